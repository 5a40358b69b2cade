"""Real processes for fault tests: Scout services (`scout api|worker`) and a private NATS server."""

import asyncio
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from .http import free_port

SCOUT = str(Path(sys.executable).with_name("scout"))


class Proc:
    """One child process with its output kept in a log file (shown when a test fails)."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name, self.args, self.env = name, args, env
        self.log_path = log_dir / f"{name}.log"
        self.popen: subprocess.Popen | None = None

    def start(self) -> "Proc":
        log = self.log_path.open("ab")
        self.popen = subprocess.Popen(
            self.args,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: kill() reaches its children too
        )
        log.close()
        return self

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL: no cleanup, no goodbye — what a crash or OOM kill looks like."""
        if self.running:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait()

    def stop(self, timeout: float = 15) -> None:
        if self.running:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def service_env(settings, **overrides: str) -> dict[str, str]:
    """The environment a service process needs to run with ``settings`` (a Settings object):
    every setting as its environment variable, so the child sees exactly what the test set."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SCOUT_", "DATABASE_"))}
    for name, value in settings.model_dump().items():
        if value is not None:
            env[name.upper()] = str(value)
    env["LOG_FORMAT"] = "console"
    env.update(overrides)
    return env


def scout_worker(service: str, env: dict[str, str], log_dir: Path, tag: str = "") -> Proc:
    """A worker process; ``proc.url`` serves /healthz once its consumers and RPC servers run."""
    port = free_port()
    env = {**env, "WORKER_METRICS_PORT": str(port), "WORKER_METRICS_HOST": "127.0.0.1"}
    proc = Proc(f"{service}-worker{tag}", [SCOUT, "worker", service], env, log_dir)
    proc.url = f"http://127.0.0.1:{port}"  # type: ignore[attr-defined]
    return proc


async def started(*procs: Proc, within: float = 30) -> None:
    """Wait until every API/worker process answers /healthz (a worker: fully started)."""
    await asyncio.gather(*(wait_http(f"{p.url}/healthz", within=within) for p in procs))  # type: ignore[attr-defined]


def scout_api(service: str, env: dict[str, str], log_dir: Path, port: int | None = None) -> Proc:
    port = port or free_port()
    proc = Proc(f"{service}-api", [SCOUT, "api", service, "--port", str(port)], env, log_dir)
    proc.url = f"http://127.0.0.1:{port}"  # type: ignore[attr-defined]
    return proc


async def wait_http(url: str, *, status: int = 200, within: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + within
    async with httpx.AsyncClient(timeout=2) as client:
        while True:
            try:
                if (await client.get(url)).status_code == status:
                    return
            except httpx.HTTPError:
                pass
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"{url} did not answer {status} within {within}s")
            await asyncio.sleep(0.1)


class NatsServer:
    """A private nats-server on a free port: stop it and start it again for real. JetStream is
    on unless ``jetstream`` is false (set before a start: the same server, without it); a
    ``config`` file, when set, replaces the command-line options."""

    def __init__(self, store: Path, log_dir: Path, *, jetstream: bool = True) -> None:
        self.binary = shutil.which("nats-server") or "/usr/sbin/nats-server"
        self.port, self.store, self.jetstream = free_port(), store, jetstream
        self.config: Path | None = None
        self.proc = Proc("nats-server", [], dict(os.environ), log_dir)

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.proc.args = [self.binary, "-a", "127.0.0.1", "-p", str(self.port)]
        if self.config is not None:
            self.proc.args = [self.binary, "-c", str(self.config)]
        elif self.jetstream:
            self.proc.args += ["-js", "-sd", str(self.store)]
        self.proc.start()
        deadline = asyncio.get_running_loop().time() + 10
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.close()
                return
            except OSError:
                if asyncio.get_running_loop().time() > deadline:
                    raise TimeoutError(
                        f"nats-server did not start:\n{self.proc.output()}"
                    ) from None
                await asyncio.sleep(0.05)

    def stop(self) -> None:
        self.proc.stop()
