"""Request/reply: typed round trips shared by a queue group; silence becomes DependencyUnavailable."""

import asyncio
import time
import uuid

import orjson
import psycopg
import pytest
from nats.aio.client import Client as NATS
from pydantic import ValidationError

from shared.db import make_engine
from shared.errors import LimitReached
from shared.events.catalogue import UsageReserveReply, UsageReserveRequest
from shared.events.health import DatabaseHealth
from shared.events.rpc import DependencyUnavailable, RemoteError, request, serve

RESERVE = "billing.usage.reserve"


def reserve_request(amount: int = 5) -> dict:
    return {"user_id": str(uuid.uuid4()), "resource": "creators", "amount": amount,
            "idempotency_key": "job-1"}  # fmt: skip


async def test_typed_round_trip_shared_by_a_queue_group(nc: NATS, nats_prefix: str):
    served_by: list[str] = []

    def worker(name: str):
        async def reserve(req: UsageReserveRequest) -> UsageReserveReply:
            served_by.append(name)
            return UsageReserveReply(allowed=True, reservation_id=uuid.uuid4(), used=req.amount, limit=100)  # fmt: skip

        return reserve

    subs = [await serve(nc, RESERVE, worker(n), prefix=nats_prefix) for n in ("a", "b")]
    replies = [await request(nc, RESERVE, reserve_request(), prefix=nats_prefix) for _ in range(20)]
    assert all(isinstance(r, UsageReserveReply) and r.used == 5 for r in replies)
    assert len(served_by) == 20 and set(served_by) == {"a", "b"}  # each request answered once
    for sub in subs:
        await sub.unsubscribe()


async def test_a_domain_error_crosses_the_wire_with_its_code_and_status(nc: NATS, nats_prefix: str):
    async def reserve(req: UsageReserveRequest) -> UsageReserveReply:
        raise LimitReached("Monthly creators used up.", code="creators_limit_reached")

    sub = await serve(nc, RESERVE, reserve, prefix=nats_prefix)
    with pytest.raises(RemoteError) as info:
        await request(nc, RESERVE, reserve_request(), prefix=nats_prefix)
    assert (info.value.code, info.value.status_code) == ("creators_limit_reached", 403)
    with pytest.raises(ValidationError):  # a malformed question never leaves the asker
        await request(nc, RESERVE, reserve_request() | {"amount": 0}, prefix=nats_prefix)
    raw = await nc.request(f"{nats_prefix}.{RESERVE}", b'{"data": {"amount": 1}}', timeout=2)
    assert orjson.loads(raw.data)["error"]["code"] == "validation_error"
    await sub.unsubscribe()


async def test_no_responders_is_dependency_unavailable_at_once(nc: NATS, nats_prefix: str):
    started = time.monotonic()
    with pytest.raises(DependencyUnavailable, match="no service answers"):
        await request(nc, RESERVE, reserve_request(), prefix=nats_prefix, timeout=5)
    assert time.monotonic() - started < 1


async def test_a_slow_server_is_dependency_unavailable_after_the_timeout(
    nc: NATS, nats_prefix: str
):
    async def stuck(req: UsageReserveRequest) -> UsageReserveReply:
        await asyncio.sleep(2)
        raise AssertionError("never answered in time")

    sub = await serve(nc, RESERVE, stuck, prefix=nats_prefix)
    with pytest.raises(DependencyUnavailable, match=r"did not answer within 0\.3s") as info:
        await request(nc, RESERVE, reserve_request(), prefix=nats_prefix, timeout=0.3)
    assert info.value.status_code == 503
    await sub.unsubscribe()


async def test_a_closed_database_gate_answers_503_without_running_the_handler(
    nc: NATS, nats_prefix: str
):
    ran: list[int] = []

    async def reserve(req: UsageReserveRequest) -> UsageReserveReply:
        ran.append(req.amount)
        raise psycopg.OperationalError("connection refused")  # the database went away

    # A database nobody listens on: the gate's probe cannot reopen it during the test.
    engine = make_engine("postgresql://scout@127.0.0.1:1/scout", connect_timeout=2,
                         statement_timeout=5, pool_timeout=2)  # fmt: skip
    health = DatabaseHealth(engine, name="rpc-test")
    sub = await serve(nc, RESERVE, reserve, prefix=nats_prefix, health=health)
    with pytest.raises(DependencyUnavailable) as first:
        await request(nc, RESERVE, reserve_request(1), prefix=nats_prefix)
    assert not health.healthy  # the handler's failure closed the gate
    answers = await asyncio.gather(
        *(request(nc, RESERVE, reserve_request(2), prefix=nats_prefix) for _ in range(10)),
        return_exceptions=True,
    )
    assert ran == [1]  # no later question reached the handler
    assert all(isinstance(a, DependencyUnavailable) and a.status_code == 503 for a in answers)
    assert first.value.status_code == 503
    health.close()
    await engine.dispose()
    await sub.unsubscribe()
