"""The database health gate of one process: stop taking work while Postgres is unreachable.

Consumers, the relay and the scheduler report failures here. The first failure that says the
database cannot be reached closes the gate; one probe loop then asks ``SELECT 1`` with capped
backoff and opens the gate when it answers. While the gate is closed nothing fetches messages
or claims jobs, so an outage of any length burns no deliveries and no retries, and the parts
resume within one probe interval of the database's return.
"""

import asyncio
import logging
import math
import time

import psycopg
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db import libpq_url

from .failures import is_database_unavailable

log = logging.getLogger("scout.health")

# A probe is one cheap connection attempt: it can run often, so recovery is seen quickly.
PROBE_FIRST_SECONDS = 0.2
PROBE_MAX_SECONDS = 2.0
PROBE_TIMEOUT_SECONDS = 2.0


class DatabaseHealth:
    """Whether this process's database answers, shared by every part of the process."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        name: str = "",
        probe_max: float = PROBE_MAX_SECONDS,
        probe_timeout: float = PROBE_TIMEOUT_SECONDS,
    ) -> None:
        self.engine, self.name = engine, name
        self.probe_max, self.probe_timeout = probe_max, probe_timeout
        self._up = asyncio.Event()
        self._up.set()
        self._prober: asyncio.Task | None = None
        self.down_since: float | None = None  # monotonic time the gate closed
        self.outages = self.probes = 0

    @property
    def healthy(self) -> bool:
        return self._up.is_set()

    def report(self, exc: BaseException) -> bool:
        """Close the gate if ``exc`` shows the database unreachable; True if it did (or was)."""
        if not is_database_unavailable(exc):
            return False
        self.mark_down(repr(exc))
        return True

    def mark_down(self, reason: str) -> None:
        if not self._up.is_set():
            return
        self._up.clear()
        self.down_since = time.monotonic()
        self.outages += 1
        log.warning("db.unavailable", extra={"part": self.name, "error": reason[:500]})
        self._prober = asyncio.get_running_loop().create_task(self._probe_until_up())

    async def wait(self, stop: asyncio.Event | None = None) -> bool:
        """Wait until the gate is open (True), or until ``stop`` is set (False)."""
        if self._up.is_set():
            return True
        waiters = [asyncio.ensure_future(self._up.wait())]
        if stop is not None:
            waiters.append(asyncio.ensure_future(stop.wait()))
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
        return self._up.is_set()

    async def probe(self, within: float | None = None) -> bool:
        """One bounded ``SELECT 1`` on a connection of its own (a busy pool is not an outage);
        a failure that shows the database unreachable closes the gate."""
        try:
            await self._select_one(within or self.probe_timeout)
            return True
        except Exception as exc:
            self.report(exc)  # a mere timeout says "slow", not "gone": the gate stays as it is
            return False

    async def _select_one(self, within: float) -> None:
        dsn = libpq_url(self.engine.url.render_as_string(hide_password=False))
        async with asyncio.timeout(within):
            conn = await psycopg.AsyncConnection.connect(
                dsn, autocommit=True, connect_timeout=max(2, math.ceil(within)),
                application_name=f"scout-probe-{self.name}"[:63],
            )  # fmt: skip
            async with conn:
                await conn.execute("SELECT 1")

    def close(self) -> None:
        if self._prober is not None:
            self._prober.cancel()

    async def _probe_until_up(self) -> None:
        delay = PROBE_FIRST_SECONDS
        while True:
            await asyncio.sleep(delay)
            self.probes += 1
            try:
                await self._select_one(self.probe_timeout)
            except Exception:
                delay = min(self.probe_max, delay * 2)
                continue
            away = time.monotonic() - (self.down_since or time.monotonic())
            self.down_since = None
            self._up.set()
            log.info("db.available", extra={"part": self.name, "down_s": round(away, 1)})
            return
