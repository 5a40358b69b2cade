"""The database health gate of one process: stop taking work while Postgres is unreachable.

Consumers, the relay and the scheduler report failures here. The first failure that says the
database cannot be reached closes the gate; one probe loop then asks ``SELECT 1`` with capped
backoff and opens the gate when it answers. While the gate is closed nothing fetches messages
or claims jobs, so an outage of any length burns no deliveries and no retries, and the parts
resume within one probe interval of the database's return.

:class:`Heartbeat` is what ``/readyz`` reports (APIs and workers alike): a ``SELECT 1`` on a
connection of its own every fraction of a second, and "ready" means one answered within the
last second. So readiness turns 503 within that second however the database goes away (an
error, a connection or name lookup that hangs), without a probe inside the readiness request.
"""

import asyncio
import contextlib
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
# The heartbeat: one SELECT 1 this often; ready while one answered within FRESH_SECONDS.
HEARTBEAT_SECONDS = 0.25
FRESH_SECONDS = 1.0


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
        """Wait until the gate is open (True), or until ``stop`` is set (False).

        False means stopping, never "still closed": a gate that opens and is closed again by
        another part before this waiter runs (the first statement after an outage failing on
        a connection from before it) keeps the waiter waiting. Parts leave their loop on False.
        """
        while not self._up.is_set():
            if stop is not None and stop.is_set():
                return False
            waiters = [asyncio.ensure_future(self._up.wait())]
            if stop is not None:
                waiters.append(asyncio.ensure_future(stop.wait()))
            try:
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiters:
                    waiter.cancel()
        return True

    async def probe(self, within: float | None = None) -> bool:
        """One bounded ``SELECT 1`` on a connection of its own (a busy pool is not an outage);
        a failure that shows the database unreachable closes the gate."""
        try:
            await self._select_one(within or self.probe_timeout)
            return True
        except Exception as exc:
            self.report(exc)  # a mere timeout says "slow", not "gone": the gate stays as it is
            return False

    async def connect(self, role: str, within: float) -> psycopg.AsyncConnection:
        """A connection of its own to the engine's database (never one of the pool's)."""
        return await psycopg.AsyncConnection.connect(
            libpq_url(self.engine.url.render_as_string(hide_password=False)),
            autocommit=True, connect_timeout=max(2, math.ceil(within)),
            application_name=f"scout-{role}-{self.name}"[:63],
            # A server that stopped answering is noticed, not waited on.
            tcp_user_timeout=5_000, keepalives=1, keepalives_idle=5, keepalives_interval=2,
            keepalives_count=2,
        )  # fmt: skip

    async def _select_one(self, within: float) -> None:
        async with asyncio.timeout(within):
            conn = await self.connect("probe", within)
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
            # The pool's idle connections are from before the outage (nothing used them since:
            # the gate was closed), so none is trusted: the first requests after the return
            # would otherwise fail on them one by one and close the gate again.
            with contextlib.suppress(Exception):
                await self.engine.dispose()
            away = time.monotonic() - (self.down_since or time.monotonic())
            self.down_since = None
            self._up.set()
            log.info("db.available", extra={"part": self.name, "down_s": round(away, 1)})
            return


class Heartbeat:
    """``SELECT 1`` every ``every`` seconds on one connection of its own, for ``/readyz``.

    :meth:`fresh` (safe from any thread) is true while the gate is open and a beat answered
    within the last ``fresh_for`` seconds. No beat is ever cancelled (psycopg would then try to
    cancel the query on the server, which can take seconds of its own): a beat that hangs only
    stops being fresh. A beat that finds the database unreachable closes the gate; while the
    gate is closed the beats pause (its probe is already asking) and resume when it opens.
    """

    def __init__(
        self, health: DatabaseHealth, *, every: float = HEARTBEAT_SECONDS,
        fresh_for: float = FRESH_SECONDS,
    ) -> None:  # fmt: skip
        self.health, self.every, self.fresh_for = health, every, fresh_for
        self.last_ok: float | None = None  # monotonic time of the last answered beat
        self._conn: psycopg.AsyncConnection | None = None
        self._task: asyncio.Task | None = None
        self._beaten = asyncio.Event()

    def fresh(self) -> bool:
        last = self.last_ok
        return self.health.healthy and last is not None and time.monotonic() - last < self.fresh_for

    async def start(self, wait: float = 2.0) -> None:
        """Beat in the background; wait up to ``wait`` seconds for the first beat's outcome."""
        self._task = asyncio.get_running_loop().create_task(self.run(), name="heartbeat")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._beaten.wait(), wait)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def run(self) -> None:
        try:
            while True:
                if not self.health.healthy:  # closed by another part: this connection is stale
                    await self._drop()
                    await self.health.wait()
                try:
                    await self._beat()
                    self.last_ok = time.monotonic()
                except Exception as exc:
                    await self._drop()
                    self.health.report(exc)
                self._beaten.set()
                await asyncio.sleep(self.every)
        finally:
            await self._drop()

    async def _beat(self) -> None:
        if self._conn is None or self._conn.closed:
            self._conn = await self.health.connect("heartbeat", self.fresh_for)
        await self._conn.execute("SELECT 1")

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()
