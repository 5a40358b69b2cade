"""``scout dev`` as a child process: the real command on free ports, against its own database.

The database is an empty scratch one (``scout dev`` migrates it), NATS the test server with a
unique ``SCOUT_NATS_PREFIX``, the dev key pair under a directory of the test's own. Output goes
to a log file (not a terminal), as under any supervisor.
"""

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from shared.events.streams import connect, delete_streams
from tooling.embedded import free_ports

SERVICES = ("identity", "billing", "campaign", "scraping")
ROOT = Path(__file__).resolve().parents[2]
STARTUP_LIMIT_S = 90.0  # what the tests tolerate on a loaded 2-core CI box


class DevSuite:
    def __init__(self, proc: subprocess.Popen, env: dict[str, str], log: Path) -> None:
        self.proc, self.env, self.log = proc, env, log
        self.startup_seconds = 0.0

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.env[f'{service.upper()}_PORT']}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def token(self, clerk_id: str) -> str:
        """What the README tells people to do: ``scout dev-token <clerk_id>``."""
        result = subprocess.run(
            [sys.executable, "-m", "tooling.cli", "dev-token", clerk_id],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return result.stdout.strip()


def dev_environment(database_url: str, nats_url: str, data: Path) -> dict[str, str]:
    """The environment of one ``scout dev``: every port free and its own, nothing inherited
    that would point it elsewhere (keys, Stripe)."""
    env = {
        **os.environ,
        "SCOUT_ENV": "development",
        "DATABASE_URL": database_url,
        "NATS_URL": nats_url,
        "SCOUT_NATS_PREFIX": f"e2e{uuid.uuid4().hex[:8]}",
        "XDG_DATA_HOME": str(data),  # its own dev key pair
        "SCRAPING_PROVIDER": "synthetic",
    }
    for name in ("AUTH_PUBLIC_KEY", "AUTH_JWKS_URL", "AUTH_ISSUER", "STRIPE_SECRET_KEY"):
        env.pop(name, None)
    ports = iter(free_ports(2 * len(SERVICES)))  # all distinct
    for service in SERVICES:
        env[f"{service.upper()}_PORT"] = str(next(ports))
        env[f"{service.upper()}_WORKER_METRICS_PORT"] = str(next(ports))
    return env


def spawn(env: dict[str, str], log: Path) -> subprocess.Popen:
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "tooling.cli", "dev", "--no-colour"],
            cwd=ROOT,  # where a person runs it: the banner's commands are relative to it
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


async def start(env: dict[str, str], log: Path) -> DevSuite:
    """``scout dev`` until it prints "Scout is up" (the test fails if it exits or is slow)."""
    started = time.monotonic()
    suite = DevSuite(spawn(env, log), env, log)
    while "Scout is up" not in suite.output():
        if suite.proc.poll() is not None:
            pytest.fail(f"scout dev exited with {suite.proc.returncode}:\n{suite.output()[-6000:]}")
        if time.monotonic() - started > STARTUP_LIMIT_S:
            stop(suite)
            pytest.fail(f"scout dev not up in {STARTUP_LIMIT_S} s:\n{suite.output()[-6000:]}")
        await asyncio.sleep(0.2)
    suite.startup_seconds = time.monotonic() - started
    return suite


def stop(suite: DevSuite) -> None:
    """Ctrl-C, as a person would; SIGKILL to the group if it does not stop within a minute."""
    if suite.proc.poll() is None:
        suite.proc.send_signal(signal.SIGINT)
        try:
            suite.proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(suite.proc.pid, signal.SIGKILL)
            suite.proc.wait(10)


async def forget_streams(nats_url: str, env: dict[str, str]) -> None:
    nc = await connect(nats_url, name="e2e-cleanup")
    try:
        await delete_streams(nc.jetstream(), env["SCOUT_NATS_PREFIX"])
    finally:
        await nc.close()
