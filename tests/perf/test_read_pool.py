"""The engine's ReadPool: the connections a read session's driver-path reads run on."""

import asyncio

import psycopg
import pytest
import sqlalchemy as sa

from shared import sqltrace
from shared.db import DriverQuery, libpq_url, make_engine, read_pool
from shared.events.failures import is_transient
from shared.queries.sessions import read_session_factory

from ..support.wait import eventually

PID = DriverQuery(sa.text("SELECT pg_backend_pid() AS pid, pg_sleep(:seconds) AS slept"))
FAILS = DriverQuery(sa.text("SELECT 1 / (:zero)::int"))


async def _pids(sessions, n: int, seconds: float = 0.05) -> set[int]:
    """``n`` reads at once (each holding its connection ``seconds``): their backends."""

    async def one() -> int:
        async with sessions() as session:
            return await PID.scalar(session, {"seconds": seconds})

    return set(await asyncio.gather(*(one() for _ in range(n))))


async def test_reads_take_the_read_pool_and_keep_its_connections(database_url):
    engine = make_engine(database_url, pool_size=3, application_name="scout-read-pool-test")
    sessions = read_session_factory(engine)
    seen: list[tuple[bool, str]] = []
    try:
        with sqltrace.recording(engine, lambda c, s, p: seen.append((c.connection.autocommit, s))):
            pids = await _pids(sessions, 3)
        assert len(pids) == 3
        assert engine.sync_engine.pool.checkedout() == 0  # SQLAlchemy's pool never checked out
        assert engine.sync_engine.pool.checkedin() == 0
        # Recorded at the driver like every other statement, in autocommit.
        assert len(seen) == 3 and all(autocommit for autocommit, _ in seen)
        assert await _pids(sessions, 3) == pids  # reused, not reopened
        # A statement error leaves an autocommit connection usable: it is kept.
        async with sessions() as session:
            with pytest.raises(psycopg.errors.DivisionByZero):
                await FAILS.scalar(session, {"zero": 0})
        assert await _pids(sessions, 3) == pids
    finally:
        await engine.dispose()


async def test_a_killed_backend_costs_one_error_then_the_read_pool_recovers(database_url):
    engine = make_engine(database_url, pool_size=3, application_name="scout-read-pool-test")
    sessions = read_session_factory(engine)
    try:
        pids = await _pids(sessions, 3)
        with psycopg.connect(libpq_url(database_url), autocommit=True) as admin:
            for pid in pids:
                admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        with pytest.raises(psycopg.OperationalError) as failure:
            await _pids(sessions, 1, seconds=0)
        assert is_transient(failure.value)  # → 503 from an API, a retry in consumers
        # The broken connection dropped the other idle ones: every later read works.
        fresh = await _pids(sessions, 3)
        assert len(fresh) == 3 and not fresh & pids
    finally:
        await engine.dispose()


async def test_disposing_the_engine_closes_the_idle_read_connections(database_url):
    name = "scout-read-pool-dispose"
    engine = make_engine(database_url, pool_size=2, application_name=name)
    sessions = read_session_factory(engine)
    try:
        pids = await _pids(sessions, 2)
        await engine.dispose()  # what the database gate does when it reopens
        with psycopg.connect(libpq_url(database_url), autocommit=True) as admin:

            async def closed() -> bool:
                alive = admin.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", (list(pids),)
                ).fetchone()[0]
                return alive == 0

            await eventually(closed, within=5)
        assert not (await _pids(sessions, 1)) & pids
    finally:
        await engine.dispose()


async def test_the_read_pool_is_bounded_and_a_wait_for_it_is_bounded(database_url):
    engine = make_engine(database_url, pool_size=1, pool_timeout=0.2)
    sessions = read_session_factory(engine)
    reads = read_pool(engine)
    assert reads is not None and reads.size == 1
    try:
        holder = asyncio.create_task(_pids(sessions, 1, seconds=1.0))

        async def held() -> bool:
            return reads.checked_out == 1

        await eventually(held, within=5)
        with pytest.raises(sa.exc.TimeoutError) as waited:
            await _pids(sessions, 1, seconds=0)
        assert is_transient(waited.value)  # a busy pool is "try again", never a 500
        await holder
        assert reads.checked_out == 0
        assert len(await _pids(sessions, 1, seconds=0)) == 1  # the slot came back
    finally:
        await engine.dispose()


SETTINGS_SQL = sa.text("SELECT current_setting('jit'), current_setting('statement_timeout')")
SETTINGS = DriverQuery(SETTINGS_SQL)


async def test_both_pools_run_without_jit_and_with_the_statement_timeout(database_url):
    engine = make_engine(database_url, pool_size=1, statement_timeout=7)
    try:
        async with read_session_factory(engine)() as session:
            read = await SETTINGS.first(session, {})
        async with engine.connect() as conn:
            transactional = (await conn.execute(SETTINGS_SQL)).one()
    finally:
        await engine.dispose()
    assert tuple(read) == tuple(transactional) == ("off", "7s")
