# Sourced by scripts/*: make .venv hold exactly what pyproject.toml asks for.
# Reinstalls only when pyproject.toml changes (its hash is stamped inside the venv).

ensure_venv() {
    local python="${PYTHON:-}"
    if [ -z "$python" ]; then
        for candidate in python3.11 python3.12 python3.13 python3; do
            if command -v "$candidate" >/dev/null 2>&1; then python="$candidate"; break; fi
        done
    fi
    [ -n "$python" ] || { echo "Python 3.11+ is required" >&2; exit 1; }
    if [ ! -x .venv/bin/python ]; then
        echo "creating .venv with $("$python" --version)" >&2
        "$python" -m venv .venv
    fi
    local stamp=.venv/.scout-installed want
    want=$(sha256sum pyproject.toml | cut -d' ' -f1)
    if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
        echo "installing Scout and its dependencies into .venv" >&2
        .venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
        echo "$want" > "$stamp"
    fi
}
