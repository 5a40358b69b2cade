"""The one failure classification, class by class, on real failures where they can be caused:
transient (retried for as long as it takes) vs permanent (counted, then dead-lettered)."""

import asyncio
import uuid

import nats.errors
import orjson
import psycopg
import pytest
import sqlalchemy as sa
from nats.aio.client import Client as NATS
from nats.js.errors import NotFoundError, ServiceUnavailableError
from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine

from services.scraping.providers import ProviderError, ProviderUnavailable
from shared.db import make_engine
from shared.errors import DependencyUnavailable, NotFound
from shared.events.failures import TransientError, is_database_unavailable, is_transient
from shared.events.rpc import RemoteError, request, serve

from .conftest import TcpProxy

RESERVE = "billing.usage.reserve"


async def failure(awaitable) -> BaseException:
    try:
        await awaitable
    except BaseException as exc:
        return exc
    raise AssertionError("expected a failure")


def transient_db_down(exc: BaseException) -> bool:
    return is_transient(exc) and is_database_unavailable(exc)


def transient_db_busy(exc: BaseException) -> bool:
    return is_transient(exc) and not is_database_unavailable(exc)


def permanent(exc: BaseException) -> bool:
    return not is_transient(exc) and not is_database_unavailable(exc)


async def _select(engine: AsyncEngine, sql: str = "SELECT 1") -> None:
    async with engine.connect() as conn:
        await conn.execute(sa.text(sql))


# --- Postgres unreachable ---------------------------------------------------------------------


async def test_connection_refused_is_the_database_down(database_url: str):
    proxy = TcpProxy(database_url, default_port=5432)
    await proxy.start()
    engine = make_engine(proxy.url_for(database_url), pool_size=1, connect_timeout=2)
    await proxy.stop()
    try:
        assert transient_db_down(await failure(_select(engine)))
    finally:
        await engine.dispose()


async def test_a_connection_lost_mid_use_is_the_database_down(
    pg_proxy: TcpProxy, proxied_engine: AsyncEngine
):
    async with proxied_engine.connect() as conn:
        await conn.execute(sa.text("SELECT 1"))
        await pg_proxy.stop()  # the server "restarts" under an open connection
        exc = await failure(conn.execute(sa.text("SELECT 1")))
    assert transient_db_down(exc)
    assert isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated


async def test_an_administrator_terminating_the_session_is_the_database_down(
    engine: AsyncEngine,
):
    async with engine.connect() as victim, engine.connect() as admin:
        pid = await victim.scalar(sa.text("SELECT pg_backend_pid()"))
        await admin.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        exc = await failure(victim.execute(sa.text("SELECT 1")))
    assert transient_db_down(exc)


# --- Postgres busy ----------------------------------------------------------------------------


async def test_a_pool_checkout_timeout_is_transient_but_not_an_outage(database_url: str):
    engine = make_engine(database_url, pool_size=1, pool_timeout=0.2)  # two connections
    try:
        async with engine.connect() as a, engine.connect() as b:
            await a.execute(sa.text("SELECT 1"))
            await b.execute(sa.text("SELECT 1"))
            exc = await failure(_select(engine))
    finally:
        await engine.dispose()
    assert isinstance(exc, sa.exc.TimeoutError) and transient_db_busy(exc)


async def test_statement_and_lock_timeouts_are_transient(committed: AsyncEngine):
    slow = make_engine(committed.url.render_as_string(hide_password=False), pool_size=1,
                       statement_timeout=0.05)  # fmt: skip
    try:
        assert transient_db_busy(await failure(_select(slow, "SELECT pg_sleep(1)")))  # 57014
    finally:
        await slow.dispose()
    key = f"lock-{uuid.uuid4().hex[:6]}"
    async with committed.begin() as conn:
        await conn.execute(
            sa.text("INSERT INTO rate_limits (key, tat) VALUES (:k, now())"), {"k": key}
        )
    async with committed.connect() as holder, committed.connect() as waiter:
        await holder.begin()
        await holder.execute(
            sa.text("SELECT 1 FROM rate_limits WHERE key = :k FOR UPDATE"), {"k": key}
        )
        await waiter.begin()
        await waiter.execute(sa.text("SET LOCAL lock_timeout = '50ms'"))
        exc = await failure(
            waiter.execute(sa.text("SELECT 1 FROM rate_limits WHERE key = :k FOR UPDATE"), {"k": key})
        )  # fmt: skip
        await holder.rollback()
    assert transient_db_busy(exc)  # 55P03


async def test_serialization_failures_and_deadlocks_are_transient(committed: AsyncEngine):
    keys = [f"ser-{uuid.uuid4().hex[:6]}" for _ in range(2)]
    async with committed.begin() as conn:
        for key in keys:
            await conn.execute(
                sa.text("INSERT INTO rate_limits (key, tat) VALUES (:k, now())"), {"k": key}
            )
    bump = sa.text("UPDATE rate_limits SET tat = tat + interval '1 second' WHERE key = :k")

    # Serialization failure (40001): a repeatable-read transaction updates a row another
    # transaction changed after its snapshot.
    async with committed.connect() as a:
        await a.execution_options(isolation_level="REPEATABLE READ")
        await a.begin()
        await a.execute(sa.text("SELECT tat FROM rate_limits WHERE key = :k"), {"k": keys[0]})
        async with committed.begin() as b:
            await b.execute(bump, {"k": keys[0]})
        assert transient_db_busy(await failure(a.execute(bump, {"k": keys[0]})))
        await a.rollback()

    # Deadlock (40P01): two transactions lock the same two rows in opposite orders.
    async with committed.connect() as a, committed.connect() as b:
        await a.begin()
        await b.begin()
        await a.execute(bump, {"k": keys[0]})
        await b.execute(bump, {"k": keys[1]})
        outcomes = await asyncio.gather(
            a.execute(bump, {"k": keys[1]}), b.execute(bump, {"k": keys[0]}),
            return_exceptions=True,
        )  # fmt: skip
        await a.rollback()
        await b.rollback()
    [deadlock] = [o for o in outcomes if isinstance(o, BaseException)]
    assert transient_db_busy(deadlock)


# --- NATS and request/reply -------------------------------------------------------------------


async def test_nobody_answering_or_answering_late_is_transient(nc: NATS, nats_prefix: str):
    exc = await failure(nc.request(f"{nats_prefix}.nobody.home", b"", timeout=1))
    assert isinstance(exc, nats.errors.NoRespondersError) and transient_db_busy(exc)
    assert is_transient(
        await failure(request(nc, RESERVE, _reserve(), prefix=nats_prefix, timeout=1))
    )

    async def slow(req):
        await asyncio.Event().wait()

    sub = await serve(nc, RESERVE, slow, prefix=nats_prefix)
    exc = await failure(request(nc, RESERVE, _reserve(), prefix=nats_prefix, timeout=0.2))
    assert isinstance(exc, DependencyUnavailable) and is_transient(exc)
    await sub.unsubscribe()


async def test_a_closed_nats_connection_and_jetstream_unavailable_are_transient(nats_url: str):
    conn = NATS()
    await conn.connect(servers=[nats_url], allow_reconnect=False)
    await conn.close()
    assert is_transient(await failure(conn.publish("x", b"")))
    assert is_transient(ServiceUnavailableError(code=503, description="JetStream not ready"))


async def test_a_missing_stream_is_permanent(nc: NATS, nats_prefix: str):
    exc = await failure(nc.jetstream().stream_info(f"{nats_prefix}_NOPE"))
    assert isinstance(exc, NotFoundError) and permanent(exc)


async def test_a_peer_that_fails_transiently_answers_503_and_the_asker_sees_it_unavailable(
    nc: NATS, nats_prefix: str
):
    async def database_away(req):
        raise psycopg.OperationalError("connection failed: Connection refused")

    sub = await serve(nc, RESERVE, database_away, prefix=nats_prefix)
    raw = await nc.request(
        f"{nats_prefix}.{RESERVE}", orjson.dumps({"data": _reserve()}), timeout=2
    )
    assert orjson.loads(raw.data)["error"] == {
        "code": "dependency_unavailable", "detail": f"{RESERVE}: try again later", "status": 503,
    }  # fmt: skip
    exc = await failure(request(nc, RESERVE, _reserve(), prefix=nats_prefix))
    await sub.unsubscribe()
    assert isinstance(exc, DependencyUnavailable) and is_transient(exc)


async def test_a_peer_with_a_bug_is_unavailable_to_the_asker_and_a_4xx_is_permanent(
    nc: NATS, nats_prefix: str
):
    async def bug(req):
        raise KeyError("oops")

    sub = await serve(nc, RESERVE, bug, prefix=nats_prefix)
    assert isinstance(
        await failure(request(nc, RESERVE, _reserve(), prefix=nats_prefix)), DependencyUnavailable
    )
    await sub.unsubscribe()

    async def unknown(req):
        raise NotFound("no such reservation")

    sub = await serve(nc, RESERVE, unknown, prefix=nats_prefix)
    exc = await failure(request(nc, RESERVE, _reserve(), prefix=nats_prefix))
    await sub.unsubscribe()
    assert isinstance(exc, RemoteError) and exc.status_code == 404 and permanent(exc)


# --- providers and everything else ------------------------------------------------------------


def test_a_provider_away_is_transient_and_a_provider_refusal_is_permanent():
    assert is_transient(ProviderUnavailable("HTTP 503"))
    assert permanent(ProviderError("HTTP 403"))
    assert is_transient(TransientError("stripe down", retry_after=5))


async def test_bugs_and_bad_data_are_permanent(committed: AsyncEngine):
    key = f"dup-{uuid.uuid4().hex[:6]}"
    insert = sa.text("INSERT INTO rate_limits (key, tat) VALUES (:k, now())")
    async with committed.begin() as conn:
        await conn.execute(insert, {"k": key})
    async with committed.connect() as conn:
        assert permanent(await failure(conn.execute(insert, {"k": key})))  # unique violation
    async with committed.connect() as conn:
        assert permanent(await failure(conn.execute(sa.text("SELECT * FROM no_such_table"))))
    async with committed.connect() as conn:
        assert permanent(await failure(conn.execute(sa.text("SELECT 1 / 0"))))

    class Model(BaseModel):
        n: int

    with pytest.raises(ValidationError) as invalid:
        Model.model_validate({"n": "x"})
    for exc in (ValueError("bad"), KeyError("k"), invalid.value, AssertionError()):
        assert permanent(exc)


def test_an_error_raised_from_a_transient_one_stays_transient_but_not_one_merely_raised_after():
    try:
        try:
            raise ConnectionRefusedError("db")
        except ConnectionRefusedError as exc:
            raise ValueError("wrapped on purpose") from exc
    except ValueError as wrapped:
        assert is_transient(wrapped)
    try:
        try:
            raise ConnectionRefusedError("db")
        except ConnectionRefusedError:
            raise ValueError("a new bug while handling it") from None
    except ValueError as unrelated:
        assert permanent(unrelated)
    try:
        try:
            raise ConnectionRefusedError("db")
        except ConnectionRefusedError:
            raise KeyError("raised inside the except block")  # noqa: B904 — the point
    except KeyError as implicit:
        assert permanent(implicit)


def _reserve() -> dict:
    return {"user_id": str(uuid.uuid4()), "resource": "creators", "amount": 1,
            "idempotency_key": "k"}  # fmt: skip
