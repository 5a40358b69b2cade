"""The autocommit reads' own connections: :class:`ReadPool`, one per engine built by
``shared.db.make_engine``."""

import asyncio
import time
import weakref
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import psycopg
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from shared import sqltrace

# An engine's connections (both pools) are reopened after this long.
POOL_RECYCLE_SECONDS = 1800

T = TypeVar("T")
Connect = Callable[[], Awaitable[psycopg.AsyncConnection]]
_READ_POOLS: "weakref.WeakKeyDictionary[sa.Engine, ReadPool]" = weakref.WeakKeyDictionary()


class ReadPool:
    """Autocommit psycopg connections for the driver-path reads of read sessions (and for the
    rare write that is one statement, its own transaction: ``DriverQuery.autocommit``).

    An autocommit read is its own snapshot, so which connection runs it changes nothing; run
    here, a read skips SQLAlchemy's pool checkout and return and the greenlet hops around them
    (measured by ``scout db perf`` on the profile read). Every engine built by
    ``shared.db.make_engine`` has one (:func:`read_pool`), with the engine's connect (its timeouts and
    name-lookup bound), its statement tracing, up to ``size`` connections opened lazily, and the
    engine's pool timeout and recycle age. It is dropped whenever the engine's pool is
    (``engine.dispose()``: the database gate reopening, shutdown); a connection a failure left
    unusable is closed, and one that shows the server gone drops every idle one too, as
    SQLAlchemy invalidates its pool on a disconnect.
    """

    def __init__(self, connect: Connect, engine: AsyncEngine, *, size: int, timeout: float) -> None:
        self._connect, self._engine = connect, weakref.ref(engine)
        self.size, self.timeout = size, timeout
        self._idle: list[tuple[psycopg.AsyncConnection, float]] = []
        self._slots: asyncio.Semaphore | None = None
        self.checked_out = 0

    async def execute(
        self,
        sql: str,
        params: Mapping[str, Any],
        fetch: Callable[[psycopg.AsyncCursor], Awaitable[T]],
        *,
        prepare: bool | None = None,
    ) -> T:
        """Run ``sql`` on a pooled connection and return ``fetch(cursor)``; ``prepare`` as
        psycopg's ``execute`` takes it."""
        slots = self._slots
        if slots is None:  # made here: a semaphore belongs to the loop that first waits on it
            slots = self._slots = asyncio.Semaphore(self.size)
        if slots.locked():
            try:
                async with asyncio.timeout(self.timeout):
                    await slots.acquire()
            except TimeoutError:
                raise sa.exc.TimeoutError(
                    f"no read connection free within {self.timeout:g} s (pool of {self.size})"
                ) from None
        else:
            await slots.acquire()
        self.checked_out += 1
        held: tuple[psycopg.AsyncConnection, float] | None = None
        try:
            held = await self._take()
            result = await fetch(await held[0].cursor().execute(sql, params, prepare=prepare))
        except BaseException:
            if held is not None:
                self._discard_if_unusable(held)
            raise
        else:
            self._idle.append(held)
        finally:
            self.checked_out -= 1
            slots.release()
        return result

    async def _take(self) -> tuple[psycopg.AsyncConnection, float]:
        """An idle connection (the most recently used), or a new one."""
        while self._idle:
            held = self._idle.pop()
            if time.monotonic() - held[1] < POOL_RECYCLE_SECONDS and not held[0].closed:
                return held
            held[0].pgconn.finish()
        conn = await self._connect()
        engine = self._engine()
        if engine is not None:
            sqltrace.adopt(engine, conn)
        await conn.set_autocommit(True)
        return conn, time.monotonic()

    def _discard_if_unusable(self, held: tuple[psycopg.AsyncConnection, float]) -> None:
        """After a failure: keep a connection still idle (a statement error in autocommit leaves
        it so), close any other; a broken one means the server went away, so drop them all."""
        conn = held[0]
        if conn.broken or conn.closed:
            self.drop_idle()
        elif conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
            self._idle.append(held)
            return
        conn.pgconn.finish()

    def drop_idle(self) -> None:
        """Close every idle connection (none is in use by anyone: closing is immediate)."""
        idle, self._idle = self._idle, []
        for conn, _ in idle:
            conn.pgconn.finish()


def read_pool(engine: AsyncEngine) -> ReadPool | None:
    """The engine's :class:`ReadPool` (None for an engine not built by ``make_engine``)."""
    return _READ_POOLS.get(engine.sync_engine)


def attach(engine: AsyncEngine, connect: Connect, *, size: int, timeout: float) -> ReadPool:
    """Give ``engine`` its :class:`ReadPool`, dropped whenever the engine's pool is."""
    reads = ReadPool(connect, engine, size=size, timeout=timeout)
    _READ_POOLS[engine.sync_engine] = reads
    sa.event.listen(engine.sync_engine, "engine_disposed", lambda _engine: reads.drop_idle())
    return reads
