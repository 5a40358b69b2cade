"""Database engines and sessions: async SQLAlchemy on psycopg 3, built by the caller (never at import)."""

import asyncio
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import psycopg
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql.psycopg import PGDialectAsync_psycopg
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from shared import readpool, sqltrace
from shared.readpool import POOL_RECYCLE_SECONDS, ReadPool, read_pool
from shared.settings import Settings, get_settings

log = logging.getLogger("scout.db")

Hook = Callable[[], Awaitable[object]]
_AFTER_COMMIT = "scout.after_commit"
_AFTER_ROLLBACK = "scout.after_rollback"


def sqlalchemy_url(url: str) -> str:
    """``postgresql://…`` (the form ``DATABASE_URL`` takes) → the psycopg 3 SQLAlchemy URL."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    raise ValueError(f"DATABASE_URL must be a postgresql:// URL, got {url.split('://')[0]}://…")


def libpq_url(url: str) -> str:
    """Any accepted form → a plain ``postgresql://`` DSN for raw psycopg."""
    return "postgresql://" + sqlalchemy_url(url).removeprefix("postgresql+psycopg://")


# Server settings of every Scout connection, beside its statement timeout. No JIT: it compiles
# any plan whose estimate passes jit_above_cost, and Scout's statements are short reads and
# writes that never earn it back (14 ms of compiling for a 13 ms text search on the seed's
# 1M-creator job).
SESSION_OPTIONS = "-c jit=off"


def make_engine(
    url: str,
    *,
    pool_size: int = 10,
    application_name: str = "scout",
    connect_timeout: float | None = None,
    statement_timeout: float | None = None,
    pool_timeout: float | None = None,
) -> AsyncEngine:
    """An async engine whose pool keeps up to ``2 * pool_size`` connections, opened lazily.

    Measured by ``tests/bench/bench_http.py``: with ``pool_size`` kept and as many again as
    overflow, 16 concurrent requests closed and reopened overflow connections all the time (a
    new Postgres backend each), so the pool keeps its peak instead (same ceiling as before).
    No ``pool_pre_ping``: it cost a ``SELECT 1`` round trip on every checkout. Dead connections
    are found otherwise: TCP keepalives, ``pool_recycle``, and SQLAlchemy's disconnect
    handling, which invalidates the whole pool on the first error that shows the server went
    away, so after a Postgres restart one request (answered 503) or one consumer attempt
    (retried) pays for it.

    Nothing hangs on an unreachable database: connecting gives up after ``connect_timeout``
    (the host name's lookup included), a statement after ``statement_timeout`` (server side;
    ``tcp_user_timeout`` covers a server that stopped answering mid-statement), and waiting
    for a pooled connection after ``pool_timeout``. Each defaults to its
    ``DB_*_TIMEOUT_SECONDS`` setting.
    """
    if None in (connect_timeout, statement_timeout, pool_timeout):
        defaults = get_settings()
        connect_timeout = _given(connect_timeout, defaults.db_connect_timeout_seconds)
        statement_timeout = _given(statement_timeout, defaults.db_statement_timeout_seconds)
        pool_timeout = _given(pool_timeout, defaults.db_pool_timeout_seconds)
    statement_ms = int(statement_timeout * 1000)
    dsn = libpq_url(url)
    connect_args = {
        "application_name": application_name,
        # libpq takes whole seconds (and treats 1 as 2); never 0, which means "wait forever".
        "connect_timeout": max(2, math.ceil(connect_timeout)),
        "options": f"-c statement_timeout={statement_ms} {SESSION_OPTIONS}",
        # Unacknowledged bytes for this long mean the server is gone, not slow.
        "tcp_user_timeout": max(statement_ms, 10_000) + 5_000,
        "keepalives": 1,
        "keepalives_idle": 30,
        "keepalives_interval": 10,
        "keepalives_count": 3,
    }

    async def connect() -> psycopg.AsyncConnection:
        # libpq's connect_timeout covers each address it tries, not the host name lookup before
        # them, which can take seconds of its own when a name stops resolving (a stopped
        # container; a resolver that does not answer): the whole connect is bounded here.
        try:
            async with asyncio.timeout(max(connect_timeout, 0.1)):
                return await psycopg.AsyncConnection.connect(dsn, **connect_args)
        except TimeoutError as exc:  # what libpq's own timeout raises: "unreachable"
            raise psycopg.errors.ConnectionTimeout(
                f"connection timeout expired ({connect_timeout:g} s, name lookup included)"
            ) from exc

    engine = create_async_engine(
        sqlalchemy_url(url),
        async_creator=connect,
        pool_size=2 * pool_size,
        max_overflow=0,
        pool_recycle=POOL_RECYCLE_SECONDS,
        pool_timeout=pool_timeout,
    )
    # Every statement is visible to recorders at the driver, whatever path sent it.
    sqltrace.trace(engine)
    # The autocommit reads' own connections, dropped whenever the engine's pool is.
    readpool.attach(engine, connect, size=pool_size, timeout=pool_timeout)
    return engine


def engine_for(
    settings: Settings, *, application_name: str, pool_size: int | None = None
) -> AsyncEngine:
    """:func:`make_engine` with the pool size and timeouts ``settings`` gives."""
    return make_engine(
        settings.database_url,
        pool_size=pool_size or settings.db_pool_size,
        application_name=application_name,
        connect_timeout=settings.db_connect_timeout_seconds,
        statement_timeout=settings.db_statement_timeout_seconds,
        pool_timeout=settings.db_pool_timeout_seconds,
    )


def _given(value: float | None, default: float) -> float:
    return default if value is None else value


def make_sync_engine(url: str, **kwargs) -> sa.Engine:
    """A synchronous engine for the CLI and Alembic."""
    return sa.create_engine(sqlalchemy_url(url), **kwargs)


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


@asynccontextmanager
async def transaction(
    factory: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """One unit of work: commit on success, roll back on any exception."""
    async with factory() as session, session.begin():
        yield session


# --- what a request's unit of work does once it is settled ---------------------------------------


def after_commit(session: AsyncSession, hook: Hook) -> None:
    """Run ``hook`` once the request's unit of work (``shared.web.SessionDep``) has committed,
    before the response is sent: work that must only follow a durable change (confirming a
    reservation at billing). Best effort: a failing hook is logged, never raised."""
    session.info.setdefault(_AFTER_COMMIT, []).append(hook)


def after_rollback(session: AsyncSession, hook: Hook) -> None:
    """Run ``hook`` if the request's unit of work rolls back instead (giving a reservation
    back): the compensation for something done outside the database before the failure."""
    session.info.setdefault(_AFTER_ROLLBACK, []).append(hook)


def forget_hooks(session: AsyncSession) -> None:
    """Drop the hooks registered so far (another request has taken the operation over)."""
    session.info.pop(_AFTER_COMMIT, None)
    session.info.pop(_AFTER_ROLLBACK, None)


async def run_hooks(session: AsyncSession, *, committed: bool) -> None:
    """Run (and forget) the hooks for how the unit of work ended."""
    hooks = session.info.pop(_AFTER_COMMIT if committed else _AFTER_ROLLBACK, [])
    forget_hooks(session)
    for hook in hooks:
        try:
            await hook()
        except Exception:
            log.exception("db.hook_failed", extra={"committed": committed})


# --- the driver path of the hottest reads --------------------------------------------------------

_DIALECT = PGDialectAsync_psycopg()
T = TypeVar("T")


# The SQL of every ``DriverQuery`` planned for each call, so a replay of recorded statements
# (``scout db perf``'s raw-psycopg baseline) runs them as Scout does.
PLANNED_EACH_CALL: set[str] = set()


class DriverQuery:
    """A read compiled once to the SQL psycopg receives, run with psycopg directly: no
    SQLAlchemy execution context, result processing or greenlet hop per call (measured on the
    profile read: ~0.15 ms of ~0.5 ms). On a read session (``shared.queries.sessions``) it runs
    on the engine's :class:`ReadPool` (autocommit either way, so nothing changes but the cost);
    on a transactional session, on the session's own connection, inside its transaction. A
    Core ``AsyncConnection`` (already in its transaction) may stand in for the session. Every
    path is seen by every recorder (``shared.sqltrace`` records at the driver).

    Only for statements whose parameters psycopg adapts natively as SQLAlchemy would (uuid,
    str, int, lists of str, datetimes) and whose columns need no SQLAlchemy result processing
    (Postgres types psycopg loads itself); no expanding ``IN`` parameters.

    psycopg prepares a statement on a connection once it ran five times there, and Postgres
    then settles on a generic plan when its estimate is no worse than the plans it made for the
    values seen so far. ``plan_each_call`` keeps a statement unprepared, so every call is
    planned for its own values (~0.4 ms of planning): for a statement whose right plan depends
    on a value's selectivity, such as a substring that is rare in one call and common in the
    next, where a generic plan that suits one can take several times as long for the other.
    """

    __slots__ = ("defaults", "names", "prepare", "processors", "sql")

    def __init__(self, stmt: sa.Executable, *, plan_each_call: bool = False) -> None:
        compiled = stmt.compile(dialect=_DIALECT)
        self.sql: str = str(compiled)
        self.prepare: bool | None = None  # psycopg decides
        if plan_each_call:
            self.prepare = False
            PLANNED_EACH_CALL.add(self.sql)
        if "POSTCOMPILE" in self.sql:
            raise ValueError("expanding (IN) parameters need SQLAlchemy's execution path")
        # What SQLAlchemy would do to a parameter before psycopg sees it (most types: nothing).
        self.processors = dict(compiled._bind_processors)
        # Values bound at build time (literals SQLAlchemy turned into parameters).
        self.defaults: dict[str, Any] = self._processed(compiled.params)
        self.names: tuple[str, ...] | None = None  # the result's columns, from the first call

    def _processed(self, params: Mapping[str, Any]) -> dict[str, Any]:
        if not self.processors:
            return dict(params)
        convert = self.processors
        return {k: convert[k](v) if k in convert else v for k, v in params.items()}

    def bind(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The parameters psycopg receives for ``params`` (with the statement's own)."""
        return {**self.defaults, **self._processed(params)}

    async def _run(
        self,
        session: AsyncSession | AsyncConnection,
        params: Mapping[str, Any],
        fetch: Callable[[psycopg.AsyncCursor], Awaitable[T]],
    ) -> T:
        values = self.bind(params)
        if isinstance(session, AsyncSession):
            reads: ReadPool | None = session.info.get(READS)
            if reads is not None:
                return await reads.execute(self.sql, values, fetch, prepare=self.prepare)
        driver = await driver_connection(session)
        return await fetch(await driver.execute(self.sql, values, prepare=self.prepare))

    async def all(
        self, session: AsyncSession | AsyncConnection, params: Mapping[str, Any]
    ) -> list[tuple]:
        return await self._run(session, params, _fetchall)

    async def run(self, session: AsyncSession | AsyncConnection, params: Mapping[str, Any]) -> int:
        """A statement without rows (UPDATE, DELETE): how many rows it touched."""
        return await self._run(session, params, _rowcount)

    async def first(self, session: AsyncSession, params: Mapping[str, Any]) -> tuple | None:
        return await self._run(session, params, _fetchone)

    async def scalar(self, session: AsyncSession, params: Mapping[str, Any]) -> Any:
        row = await self._run(session, params, _fetchone)
        return None if row is None else row[0]

    async def mapping(
        self, session: AsyncSession, params: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        return await self._run(session, params, self._named)

    async def autocommit(self, engine: AsyncEngine, params: Mapping[str, Any]) -> tuple | None:
        """The first row of a statement that is its own transaction (one upsert deciding a
        rate limit), run in autocommit on ``engine``'s :class:`ReadPool`."""
        reads = read_pool(engine)
        if reads is None:
            raise ValueError("this engine has no ReadPool; build it with shared.db.make_engine")
        return await reads.execute(self.sql, self.bind(params), _fetchone, prepare=self.prepare)

    async def _named(self, cursor: psycopg.AsyncCursor) -> dict[str, Any] | None:
        row = await cursor.fetchone()
        if row is None:
            return None
        if self.names is None:
            # Building ``cursor.description`` costs ~2.5 µs a column per call: once is enough.
            self.names = tuple(c.name for c in cursor.description)
        return dict(zip(self.names, row, strict=True))


async def driver_connection(session: AsyncSession | AsyncConnection) -> psycopg.AsyncConnection:
    """The psycopg connection under ``session`` (in its transaction, if it has one)."""
    conn = await session.connection() if isinstance(session, AsyncSession) else session
    # Already checked out by connection(): reading it does no I/O, so no greenlet needed.
    return conn.sync_connection.connection.driver_connection


# Where a read session carries its engine's ReadPool (``session.info``).
READS = "scout.read_pool"


async def _fetchall(cursor: psycopg.AsyncCursor) -> list[tuple]:
    return await cursor.fetchall()


async def _fetchone(cursor: psycopg.AsyncCursor) -> tuple | None:
    return await cursor.fetchone()


async def _rowcount(cursor: psycopg.AsyncCursor) -> int:
    return cursor.rowcount
