"""A Compose project of the repository's own compose files, driven through ``docker compose``.

The files are used unchanged; the test chooses only what the files leave to the environment:
the project name, the published API ports (free ones, so a running ``scout dev`` or the host's
Postgres/NATS never clash) and the image tag (``SCOUT_IMAGE``, so a developer's ``scout:latest``
is left alone).
"""

import asyncio
import json
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from tooling.embedded import free_ports

from .engine import Engine

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("identity", "billing", "campaign", "scraping")
API_PORT_IN_CONTAINER = {"identity": 8001, "billing": 8002, "campaign": 8003, "scraping": 8004}
WORKER_METRICS_PORT = 9090
IMAGE = "scout:container-suite"


@dataclass
class Stack:
    engine: Engine
    project: str
    files: tuple[str, ...] = ("docker-compose.yml",)
    ports: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.ports = dict(zip(SERVICES, free_ports(len(SERVICES)), strict=True))
        self.env = {
            "SCOUT_IMAGE": IMAGE,
            **{f"{s.upper()}_PORT": str(port) for s, port in self.ports.items()},
        }

    # --- compose ---------------------------------------------------------------------------

    def _args(self, *args: str) -> list[str]:
        files = [a for f in self.files for a in ("-f", str(ROOT / f))]
        return ["compose", "-p", self.project, *files, *args]

    def compose(self, *args: str, check: bool = True, timeout: float = 600):
        return self.engine.run(
            *self._args(*args), check=check, timeout=timeout, cwd=ROOT, env=self.env
        )

    async def acompose(self, *args: str, check: bool = True, within: float = 600) -> str:
        """``docker compose`` without blocking the event loop (traffic keeps flowing)."""
        return await self.adocker(*self._args(*args), check=check, within=within)

    async def adocker(self, *args: str, check: bool = True, within: float = 600) -> str:
        proc = await asyncio.create_subprocess_exec(
            "docker", *args,
            cwd=ROOT, env={**self.engine.env, **self.env},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(proc.communicate(), within)
        if check and proc.returncode != 0:
            raise RuntimeError(f"docker {' '.join(args)} exited {proc.returncode}: {err.decode()}")
        return out.decode().strip()

    def up(self, wait_timeout: int) -> None:
        """``up --wait``; when a service never becomes healthy, the error carries the state and
        the last log lines of every container that is not, so a failure explains itself."""
        try:
            self.compose("up", "--detach", "--wait", "--wait-timeout", str(wait_timeout))
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}\n{self.unhealthy_report()}") from None

    def unhealthy_report(self, lines: int = 60) -> str:
        out = self.compose("ps", "--all", "--format", "json", check=False).stdout.decode()
        rows = [json.loads(line) for line in out.splitlines() if line.strip()]
        parts = []
        for row in rows:
            if row.get("Health") in ("", "healthy") and row.get("State") == "running":
                continue
            if row.get("State") == "exited" and row.get("ExitCode") == 0:
                continue  # a one-shot service (migrate) that finished
            name = row.get("Name", "?")
            tail = self.engine.run("logs", "--tail", str(lines), name, check=False, timeout=60)
            log = (tail.stdout + tail.stderr).decode(errors="replace")
            parts.append(f"--- {name}: {row.get('Status')}\n{log}")
        return "\n".join(parts) or "(every container is running and healthy)"

    def down(self) -> None:
        self.compose("down", "--volumes", "--remove-orphans", "--timeout", "10", check=False)

    # --- containers ------------------------------------------------------------------------

    def container_ids(self, service: str) -> list[str]:
        out = self.compose("ps", "--all", "--quiet", service).stdout.decode().split()
        return sorted(out)

    def container(self, service: str) -> str:
        ids = self.container_ids(service)
        assert len(ids) == 1, f"{service}: expected one container, found {len(ids)}"
        return ids[0]

    def inspect(self, container: str) -> dict:
        return json.loads(self.engine.out("inspect", container))[0]

    async def ainspect(self, container: str) -> dict:
        return json.loads(await self.adocker("inspect", container))[0]

    async def ip(self, container: str) -> str | None:
        networks = (await self.ainspect(container))["NetworkSettings"]["Networks"]
        return next((n["IPAddress"] for n in networks.values() if n.get("IPAddress")), None)

    async def crash(self, container: str) -> float:
        """SIGKILL the container's PID 1 from the host: what an OOM kill or a crash looks like,
        so the restart policy applies (``docker kill`` counts as a deliberate stop instead)."""
        pid = (await self.ainspect(container))["State"]["Pid"]
        assert pid > 1, f"{container} is not running"
        os.kill(pid, signal.SIGKILL)
        return time.monotonic()

    # --- inside the stack ------------------------------------------------------------------

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def token(self, clerk_id: str) -> str:
        """What the compose file's header says to do: ``scout dev-token`` in a container."""
        out = self.compose("exec", "-T", "identity-api", "scout", "dev-token", clerk_id)
        return out.stdout.decode().strip().splitlines()[-1]

    def sql(self, query: str) -> list[list[str]]:
        """Rows of ``query`` run by ``psql`` inside the postgres container (tab-separated)."""
        out = self.compose(
            "exec", "-T", "postgres",
            "psql", "-U", "scout", "-d", "scout", "-At", "-F", "\t", "-v", "ON_ERROR_STOP=1",
            "-c", query,
        ).stdout.decode()  # fmt: skip
        return [line.split("\t") for line in out.splitlines() if line]

    def scalar(self, query: str) -> int:
        return int(self.sql(query)[0][0])

    def logs_by_service(self) -> dict[str, str]:
        services = self.compose("config", "--services").stdout.decode().split()
        return {
            name: self.compose("logs", "--no-color", name, timeout=120).stdout.decode(
                errors="replace"
            )
            for name in services
        }
