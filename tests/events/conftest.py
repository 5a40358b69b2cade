"""Fixtures for the event backbone: a NATS connection with the test's streams, a TCP proxy that
can take NATS "down" and bring it back, and a counter row that handlers increment as their effect.
"""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import sqlalchemy as sa
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from shared.db import make_engine
from shared.events.streams import connect, delete_streams, ensure_streams

from ..support.proxy import TcpProxy
from ..support.wait import eventually  # noqa: F401 — re-exported for the event tests


@pytest.fixture
async def nc(nats_url: str) -> AsyncIterator[NATS]:
    conn = await connect(nats_url, name="scout-tests")
    yield conn
    await conn.close()


@pytest.fixture
async def js(nc: NATS, nats_prefix: str) -> AsyncIterator[JetStreamContext]:
    """JetStream with this test's streams provisioned; they are deleted afterwards."""
    context = nc.jetstream()
    await ensure_streams(context, nats_prefix)
    yield context
    await delete_streams(context, nats_prefix)


@pytest.fixture
async def nats_proxy(nats_url: str) -> AsyncIterator[TcpProxy]:
    proxy = TcpProxy(nats_url)
    await proxy.start()
    yield proxy
    await proxy.stop()


class Counter:
    """A ``system_configurations`` row used as a handler's observable effect."""

    def __init__(self, engine: AsyncEngine, key: str) -> None:
        self.engine, self.key = engine, key

    async def create(self) -> "Counter":
        async with self.engine.begin() as conn:
            await conn.execute(
                sa.text(
                    "INSERT INTO system_configurations (category, key, value, value_type) "
                    "VALUES ('test', :key, '0', 'number')"
                ),
                {"key": self.key},
            )
        return self

    async def increment(self, session: AsyncSession) -> None:
        await session.execute(
            sa.text(
                "UPDATE system_configurations SET value = (value::int + 1)::text "
                "WHERE category = 'test' AND key = :key"
            ),
            {"key": self.key},
        )

    async def value(self) -> int:
        async with self.engine.connect() as conn:
            return int(
                await conn.scalar(
                    sa.text(
                        "SELECT value FROM system_configurations "
                        "WHERE category = 'test' AND key = :key"
                    ),
                    {"key": self.key},
                )
            )


@pytest.fixture
async def counter(committed: AsyncEngine) -> Counter:
    return await Counter(committed, "effects").create()


@pytest.fixture
async def background() -> AsyncIterator[Callable[[Awaitable], asyncio.Task]]:
    """Start coroutines as tasks that are cancelled (and awaited) when the test ends."""
    tasks: list[asyncio.Task] = []

    def start(coro: Awaitable) -> asyncio.Task:
        task = asyncio.ensure_future(coro)
        tasks.append(task)
        return task

    yield start
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


@pytest.fixture
async def pg_proxy(database_url: str) -> AsyncIterator[TcpProxy]:
    """A TCP proxy in front of the test database: ``stop()`` is Postgres going away."""
    proxy = TcpProxy(database_url, default_port=5432)
    await proxy.start()
    yield proxy
    await proxy.stop()


@pytest.fixture
async def proxied_engine(pg_proxy: TcpProxy, database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine that reaches the test database only through ``pg_proxy`` (short timeouts)."""
    engine = make_engine(
        pg_proxy.url_for(database_url), pool_size=2, application_name="scout-tests-proxied",
        connect_timeout=2, statement_timeout=5, pool_timeout=2,
    )  # fmt: skip
    yield engine
    await engine.dispose()
