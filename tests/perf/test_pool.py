"""The engine's pool without ``pool_pre_ping``: dead connections cost one failure, then recover."""

import asyncio

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from shared.db import libpq_url, make_engine


async def _backend_pids(engine) -> set[int]:
    """Check out every pooled connection at once and report their server pids."""
    conns = [await engine.connect() for _ in range(3)]
    try:
        return {(await c.execute(sa.text("SELECT pg_backend_pid()"))).scalar_one() for c in conns}
    finally:
        for c in conns:
            await c.close()


async def test_a_killed_backend_costs_one_error_then_the_pool_recovers(database_url):
    engine = make_engine(database_url, pool_size=2, application_name="scout-pool-test")
    try:
        pids = await _backend_pids(engine)
        assert len(pids) == 3  # kept after use: the pool holds up to 2 * pool_size
        assert await _backend_pids(engine) == pids  # reused, not reopened
        with psycopg.connect(libpq_url(database_url), autocommit=True) as admin:
            for pid in pids:
                admin.execute("SELECT pg_terminate_backend(%s)", (pid,))

        async def select_one() -> int:
            async with engine.connect() as conn:
                return (await conn.execute(sa.text("SELECT 1"))).scalar_one()

        with pytest.raises(DBAPIError) as failure:
            await select_one()
        # → 503 from shared/web/errors.py in an API, a retry in consumers
        assert failure.value.connection_invalidated
        # The disconnect invalidated the whole pool: the other dead connections are not handed
        # out again, so every later checkout works.
        assert await asyncio.gather(*(select_one() for _ in range(3))) == [1, 1, 1]
        assert not (await _backend_pids(engine)) & pids
    finally:
        await engine.dispose()
