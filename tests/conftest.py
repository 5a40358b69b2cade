"""The test harness: real Postgres migrated by the real Alembic history, and real NATS.

Where they come from: ``DATABASE_URL``/``NATS_URL`` when set, else servers on the default local
ports, else testcontainers when a Docker engine answers, else the run fails with a message that
lists every attempt (``tooling.infra``). Each run gets a fresh database; each test is isolated by
rolling back its transaction, or, for tests marked ``committed``, by truncating afterwards.
"""

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from shared import sqltrace
from shared.db import libpq_url, make_engine
from shared.events.streams import connect, delete_streams
from shared.models import metadata
from shared.settings import Settings
from tooling import migrate
from tooling.infra import InfrastructureUnavailable, resolve_nats, resolve_postgres

from .support.keys import KeyPair
from .support.sql import Executed

os.environ.setdefault("SCOUT_ENV", "test")

# Reference data the first migration seeds; never truncated between tests.
SEEDED_TABLES = {"subscription_plans"}


def _database_at(admin_url: str, name: str) -> str:
    parts = psycopg.conninfo.conninfo_to_dict(libpq_url(admin_url))
    parts["dbname"] = name
    return "postgresql://" + _dsn_to_url(parts)


def _dsn_to_url(parts: dict) -> str:
    user = parts.get("user", "postgres")
    password = f":{parts['password']}" if parts.get("password") else ""
    host = parts.get("host", "127.0.0.1")
    port = parts.get("port", "5432")
    return f"{user}{password}@{host}:{port}/{parts['dbname']}"


def create_database(admin_url: str, name: str) -> str:
    with psycopg.connect(libpq_url(admin_url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return _database_at(admin_url, name)


def drop_database(admin_url: str, name: str) -> None:
    with psycopg.connect(libpq_url(admin_url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str]:
    try:
        resolved = resolve_postgres()
    except InfrastructureUnavailable as exc:
        pytest.exit(f"\n{exc}\n", returncode=3)
    yield resolved.url
    resolved.close()


@pytest.fixture(scope="session")
def database_url(postgres_admin_url: str) -> Iterator[str]:
    """A fresh database for this run, migrated to head by the real Alembic history."""
    name = f"scout_test_{uuid.uuid4().hex[:10]}"
    url = create_database(postgres_admin_url, name)
    try:
        migrate.upgrade(url, "head")
        yield url
    finally:
        drop_database(postgres_admin_url, name)


@pytest.fixture(scope="session")
def scratch_database(postgres_admin_url: str):
    """Factory for extra empty databases (migration round trips); dropped at the end."""
    names: list[str] = []

    def make() -> str:
        name = f"scout_scratch_{uuid.uuid4().hex[:10]}"
        names.append(name)
        return create_database(postgres_admin_url, name)

    yield make
    for name in names:
        drop_database(postgres_admin_url, name)


@pytest.fixture(scope="session")
def nats_url() -> Iterator[str]:
    try:
        resolved = resolve_nats()
    except InfrastructureUnavailable as exc:
        pytest.exit(f"\n{exc}\n", returncode=3)
    yield resolved.url
    resolved.close()


@pytest.fixture
async def nats_prefix(nats_url: str) -> AsyncIterator[str]:
    """A subject/stream prefix unique to one test (``SCOUT_NATS_PREFIX``); its streams go after."""
    prefix = f"t{uuid.uuid4().hex[:8]}"
    yield prefix
    nc = await connect(nats_url, name="scout-tests-cleanup")
    try:
        await delete_streams(nc.jetstream(), prefix)
    finally:
        await nc.close()


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    eng = make_engine(database_url, pool_size=5, application_name="scout-tests")
    yield eng
    await eng.dispose()


@pytest.fixture
async def session(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    """A session whose work is rolled back after the test (commits become savepoints)."""
    async with engine.connect() as conn:
        outer = await conn.begin()
        s = AsyncSession(
            bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False
        )
        try:
            yield s
        finally:
            await s.close()
            await outer.rollback()


@pytest.fixture
async def committed(engine: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    """For tests that need real commits (concurrency): every table is emptied afterwards."""
    yield engine
    tables = ", ".join(t.name for t in metadata.sorted_tables if t.name not in SEEDED_TABLES)
    async with engine.begin() as conn:
        await conn.execute(sa.text(f"TRUNCATE {tables} CASCADE"))


class StatementCounter:
    def __init__(self) -> None:
        self.statements: list[str] = []
        self.active = False

    def __call__(self, cursor, statement, parameters) -> None:
        if self.active:
            self.statements.append(statement)

    @property
    def count(self) -> int:
        return len(self.statements)

    @contextmanager
    def counting(self) -> Iterator["StatementCounter"]:
        self.statements.clear()
        self.active = True
        try:
            yield self
        finally:
            self.active = False


@contextmanager
def listening(engine: AsyncEngine, hook):
    """``hook`` sees every statement sent on ``engine`` meanwhile, recorded at the driver
    (``shared.sqltrace``), so reads on the driver path are counted too."""
    with sqltrace.recording(engine, hook):
        yield hook


@pytest.fixture
def statements(engine: AsyncEngine) -> Iterator[StatementCounter]:
    """Counts SQL statements sent on ``engine`` inside ``with statements.counting():``."""
    with listening(engine, StatementCounter()) as counter:
        yield counter


@pytest.fixture
def executed(engine: AsyncEngine) -> Iterator[Executed]:
    """Every (SQL, parameters) sent on ``engine`` during the test, as the driver received them."""
    with listening(engine, Executed()) as recorder:
        yield recorder


@pytest.fixture(scope="session")
def signing_keys() -> KeyPair:
    """The key pair test tokens are signed with (the services trust its public half)."""
    return KeyPair.generate()


@pytest.fixture
def service_settings(database_url, nats_url, nats_prefix, signing_keys) -> Settings:
    """Settings a service under test runs with: the test database, NATS prefix and keys."""
    return Settings(
        scout_env="test",
        database_url=database_url,
        nats_url=nats_url,
        scout_nats_prefix=nats_prefix,
        auth_public_key=signing_keys.public_pem.decode(),
        auth_issuer="scout-test",
        # Up to 8 connections per engine: a test may run several services at once, and the
        # machine's Postgres allows 100 clients in all.
        db_pool_size=4,
    )
