"""identity.user.created provisions billing rows once; identity.user.deleted purges them."""

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from tests.factories import make_user

from ..support.proxy import TcpProxy
from ..support.services import running_worker
from ..support.wait import eventually
from .conftest import billing_user, publish, with_stripe_subscription

_COUNT = (
    "SELECT (SELECT count(*) FROM user_subscriptions WHERE user_id = :u)"
    " + (SELECT count(*) FROM user_billing WHERE user_id = :u)"
    " + (SELECT count(*) FROM user_usage WHERE user_id = :u)"
)


async def _rows(engine, user_id) -> int:
    async with engine.connect() as conn:
        return await conn.scalar(sa.text(_COUNT), {"u": user_id})


async def test_user_created_provisions_once_even_when_redelivered(
    committed, service_settings, nc, nats_prefix
):
    async with AsyncSession(committed, expire_on_commit=False) as session, session.begin():
        user = await make_user(session, children=False)
    data = {"user_id": user.id, "clerk_user_id": user.user_id, "email": user.email}
    async with running_worker("billing", service_settings):
        # the same fact published by several relays at once, plus distinct redeliveries
        await asyncio.gather(
            *(
                publish(nc, nats_prefix, "identity.user.created", data, source="identity")
                for _ in range(5)
            )
        )

        async def provisioned() -> bool:
            return await _rows(committed, user.id) == 3

        await eventually(provisioned)
        step = {
            **data, "previous_step": "intent_captured", "step": "plan_selected",
            "plan": "scale", "interval": "yearly",
        }  # fmt: skip
        step.pop("email")
        await publish(nc, nats_prefix, "identity.onboarding.step_changed", step, source="identity")

        async def intended() -> bool:
            async with committed.connect() as conn:
                return (
                    await conn.scalar(
                        sa.text("SELECT intended_plan FROM user_subscriptions WHERE user_id = :u"),
                        {"u": user.id},
                    )
                    == "scale"
                )

        await eventually(intended)
    async with committed.connect() as conn:
        sub = (
            await conn.execute(
                sa.text(
                    "SELECT current_plan, subscription_status FROM user_subscriptions"
                    " WHERE user_id = :u"
                ),
                {"u": user.id},
            )
        ).one()
    assert tuple(sub) == (None, "none")
    assert await _rows(committed, user.id) == 3


async def test_user_deleted_purges_billing_rows(committed, service_settings, nc, nats_prefix):
    user = await billing_user(committed, plan="growth", status="active")
    data = {"user_id": user.id, "clerk_user_id": user.user_id}
    async with running_worker("billing", service_settings):
        await publish(nc, nats_prefix, "identity.user.deleted", data, source="identity")

        async def purged() -> bool:
            return await _rows(committed, user.id) == 0

        await eventually(purged)


@asynccontextmanager
async def dropping_connections(port: int) -> AsyncIterator[Callable[[], int]]:
    """A server on ``port`` that closes every connection at once, as an unreachable host would
    look to a client; yields how many connections were tried."""
    tried = 0

    async def drop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal tried
        tried += 1
        writer.close()

    server = await asyncio.start_server(drop, "127.0.0.1", port)
    try:
        yield lambda: tried
    finally:
        server.close()
        await server.wait_closed()


async def _purged_events(engine, user_id) -> int:
    async with engine.connect() as conn:
        return await conn.scalar(
            sa.text(
                "SELECT count(*) FROM events WHERE type = 'billing.user.purged'"
                " AND aggregate_id = :u"
            ),
            {"u": str(user_id)},
        )


async def _count(engine, table: str) -> int:
    async with engine.connect() as conn:
        return await conn.scalar(sa.text(f"SELECT count(*) FROM {table}"))


async def test_stripe_cancellation_is_retried_until_stripe_answers_and_only_then_purged(
    committed, stripe_settings, stripe_fake, nc, nats_prefix
):
    """Stripe 503, 429, 500, then unreachable for a while: the deletion waits (nothing purged,
    nothing counted as an attempt, nothing dead-lettered) and completes once Stripe is back."""
    user = await billing_user(committed, plan="growth", status="active")
    _, sub = await with_stripe_subscription(
        committed, stripe_fake, user, price="price_growth_monthly"
    )
    proxy = TcpProxy(stripe_fake.url, default_port=80)
    await proxy.start()
    settings = stripe_settings.model_copy(
        update={
            "stripe_api_base": f"http://127.0.0.1:{proxy.port}",
            "events_retry_max_seconds": 1.0,
            "events_max_attempts": 2,  # a transient failure counted as an attempt would show
        }
    )
    stripe_fake.failures = [503, 503, 429, 429, 500, 500]  # the client retries each once
    try:
        async with running_worker("billing", settings):
            await publish(
                nc, nats_prefix, "identity.user.deleted",
                {"user_id": user.id, "clerk_user_id": user.user_id}, source="identity",
            )  # fmt: skip

            async def answered_with_errors() -> bool:
                return not stripe_fake.failures

            await eventually(answered_with_errors, within=30)
            await proxy.stop()
            cancels = sum(m == "DELETE" for m, _, _ in stripe_fake.requests)
            # Now Stripe cannot be reached at all: every connection is dropped unanswered.
            async with dropping_connections(proxy.port) as attempts:

                async def retried_while_unreachable() -> bool:
                    return attempts() >= 4

                await eventually(retried_while_unreachable, within=30)
            assert sum(m == "DELETE" for m, _, _ in stripe_fake.requests) == cancels
            assert await _rows(committed, user.id) == 3
            assert sub["status"] == "active"
            assert await _count(committed, "event_attempts") == 0  # transient: never counted
            assert await _purged_events(committed, user.id) == 0
            await proxy.start()

            async def purged() -> bool:
                return await _rows(committed, user.id) == 0

            await eventually(purged, within=30)
    finally:
        await proxy.stop()
    assert sub["status"] == "canceled"
    assert await _purged_events(committed, user.id) == 1
    assert await _count(committed, "dead_letters") == 0


@pytest.mark.parametrize("at_stripe", ["already_canceled", "unknown"])
async def test_a_subscription_already_gone_at_stripe_counts_as_cancelled(
    committed, stripe_settings, stripe_fake, nc, nats_prefix, at_stripe
):
    user = await billing_user(committed, plan="growth", status="active")
    _, sub = await with_stripe_subscription(
        committed, stripe_fake, user, price="price_growth_monthly"
    )
    if at_stripe == "already_canceled":
        sub["status"] = "canceled"
    else:
        del stripe_fake.subscriptions[sub["id"]]
    async with running_worker("billing", stripe_settings):
        await publish(
            nc, nats_prefix, "identity.user.deleted",
            {"user_id": user.id, "clerk_user_id": user.user_id}, source="identity",
        )  # fmt: skip

        async def purged() -> bool:
            return await _rows(committed, user.id) == 0

        await eventually(purged)
    assert any(m == "DELETE" for m, _, _ in stripe_fake.requests)
    assert await _purged_events(committed, user.id) == 1


async def test_a_stripe_refusal_is_dead_lettered_and_the_rows_stay(
    committed, stripe_settings, stripe_fake, nc, nats_prefix
):
    """A 401 (a bad key) will not change by waiting: a permanent failure, dead-lettered after
    the attempts, and the user's billing rows are kept (the deletion stays visibly pending)."""
    user = await billing_user(committed, plan="growth", status="active")
    await with_stripe_subscription(committed, stripe_fake, user, price="price_growth_monthly")
    stripe_fake.fail_with = 401
    settings = stripe_settings.model_copy(
        update={"events_retry_max_seconds": 0.5, "events_max_attempts": 2}
    )
    async with running_worker("billing", settings):
        await publish(
            nc, nats_prefix, "identity.user.deleted",
            {"user_id": user.id, "clerk_user_id": user.user_id}, source="identity",
        )  # fmt: skip

        async def dead_lettered() -> bool:
            return await _count(committed, "dead_letters") == 1

        await eventually(dead_lettered, within=20)
    assert await _rows(committed, user.id) == 3
    assert await _purged_events(committed, user.id) == 0
