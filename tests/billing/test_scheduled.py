"""Scheduled upkeep and usage-following consumers, through the real worker and scheduler."""

import asyncio
import dataclasses
import time
import uuid
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.billing import worker
from services.billing.service import subscriptions, usage
from shared.events import rpc
from shared.events.catalogue import UsageReserveRequest
from shared.scheduler import schedule_job

from ..support.services import running_worker
from ..support.wait import eventually
from .conftest import billing_user, counters, publish, set_subscription, subscription_row


def _fast(ctx):
    return dataclasses.replace(worker.build(ctx), scheduler_options={"poll_interval": 0.05})


async def _reserve(engine, user_id, resource, amount, *, ttl=900, key=None):
    async with AsyncSession(engine) as session, session.begin():
        return await usage.reserve(
            session,
            UsageReserveRequest(
                user_id=user_id, resource=resource, amount=amount,
                idempotency_key=key or uuid.uuid4().hex, ttl_seconds=ttl,
            ),
        )  # fmt: skip


async def _expire_now(engine, reservation_id) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            sa.text(
                "UPDATE usage_reservations SET expires_at = now() - interval '1 second'"
                " WHERE id = :id"
            ),
            {"id": reservation_id},
        )


async def test_expired_reservations_are_given_back_by_the_scheduler(committed, service_settings):
    user = await billing_user(committed, plan="growth", status="active", plan_creators_limit=100)
    crashed = await _reserve(committed, user.id, "creators", 80)
    alive = await _reserve(committed, user.id, "creators", 20)
    assert not (await _reserve(committed, user.id, "creators", 1)).allowed
    await _expire_now(committed, crashed.reservation_id)
    async with running_worker("billing", service_settings, build=_fast):
        async with committed.begin() as conn:
            await schedule_job(conn, "billing", "usage.expire_reservations")

        async def given_back() -> bool:
            return (await counters(committed, user.id))["creators"] == 20

        await eventually(given_back)
    assert (await _reserve(committed, user.id, "creators", 80)).allowed
    async with AsyncSession(committed) as session, session.begin():  # a late, used release
        late = await usage.release(
            session,
            usage.UsageReleaseRequest(reservation_id=crashed.reservation_id, used_amount=5),
        )
    assert (late.status, late.released) == ("confirmed", 75)
    assert (await counters(committed, user.id))["creators"] == 105  # the work happened
    assert alive.allowed


async def test_monthly_reset_keeps_live_holds_and_the_anniversary(committed):
    start = datetime(2026, 1, 31, 9, 0, tzinfo=UTC)
    user = await billing_user(
        committed, plan="growth", status="active",
        usage_creators_current_month=900, enrichments_current_month=40,
        usage_campaigns_current=2, usage_reset_date=start,
    )  # fmt: skip
    not_due = await billing_user(
        committed, plan="growth", status="active", usage_creators_current_month=7,
        usage_reset_date=datetime.now(UTC) - timedelta(days=2),
    )  # fmt: skip
    hold = await _reserve(committed, user.id, "creators", 100)
    async with AsyncSession(committed) as session, session.begin():
        n = await usage.reset_monthly_usage(session, now=datetime(2026, 4, 15, tzinfo=UTC))
    after = await counters(committed, user.id)
    assert n == 1
    assert (after["creators"], after["enrichments"], after["campaigns"]) == (100, 0, 2)
    assert after["usage_reset_date"] == datetime(2026, 3, 31, 9, 0, tzinfo=UTC)
    assert (await counters(committed, not_due.id))["creators"] == 7
    async with AsyncSession(committed) as session, session.begin():
        await usage.release(
            session, usage.UsageReleaseRequest(reservation_id=hold.reservation_id, used_amount=30)
        )
    assert (await counters(committed, user.id))["creators"] == 30


async def test_reconciliation_fixes_a_drifted_row(committed, stripe_settings, stripe_fake):
    user = await billing_user(committed, plan="growth", status="trialing")
    cus = stripe_fake.customer()
    stripe_fake.subscription(
        customer=cus["id"], price="price_growth_monthly", status="canceled",
        created=int(time.time()) - 1000,
    )  # fmt: skip
    current = stripe_fake.subscription(customer=cus["id"], price="price_pro_yearly")
    async with committed.begin() as conn:
        await conn.execute(
            sa.text("UPDATE user_billing SET stripe_customer_id = :c WHERE user_id = :u"),
            {"c": cus["id"], "u": user.id},
        )
    async with AsyncSession(committed) as session, session.begin():
        result = await subscriptions.reconcile(session, stripe_settings)
    assert result == {"checked": 1, "fixed": 1}
    row = await subscription_row(committed, user.id)
    assert (row["current_plan"], row["subscription_status"], row["billing_sync_status"]) == (
        "pro", "active", "reconciled",
    )  # fmt: skip
    assert row["stripe_subscription_id"] == current["id"]


async def test_trial_expiry_announces_each_ended_trial_once(committed, service_settings):
    ended = await billing_user(committed, plan="growth", status="trialing")
    running = await billing_user(committed, plan="growth", status="trialing")
    now = datetime.now(UTC)
    await set_subscription(
        committed, ended.id, trial_start_date=now - timedelta(days=8),
        trial_end_date=now - timedelta(hours=1),
    )  # fmt: skip
    await set_subscription(
        committed, running.id, trial_start_date=now, trial_end_date=now + timedelta(days=7)
    )
    for _ in range(2):
        async with AsyncSession(committed) as session, session.begin():
            await subscriptions.expire_trials(session, service_settings)
    async with committed.connect() as conn:
        users = (
            await conn.scalars(
                sa.text("SELECT user_id FROM events WHERE type = 'billing.trial.expired'")
            )
        ).all()
    assert users == [ended.id]


async def test_job_end_settles_its_reservation_and_campaign_delete_gives_one_back(
    committed, service_settings, nc, nats_prefix
):
    user = await billing_user(committed, plan="glow_up", status="active")
    job_hold = await _reserve(committed, user.id, "creators", 500)
    campaigns = [await _reserve(committed, user.id, "campaigns", 1) for _ in range(3)]
    job = {"job_id": uuid.uuid4(), "user_id": user.id, "campaign_id": uuid.uuid4()}
    async with running_worker("billing", service_settings):
        for c in campaigns:  # the campaign service confirms what it created
            await rpc.request(
                nc, "billing.usage.release",
                {"reservation_id": str(c.reservation_id), "used_amount": 1}, prefix=nats_prefix,
            )  # fmt: skip
        ended = {
            **job, "status": "completed", "processed_results": 320,
            "reservation_id": job_hold.reservation_id,
        }  # fmt: skip
        # delivered twice (a relay re-publish): settled once
        await asyncio.gather(
            publish(nc, nats_prefix, "scraping.job.completed", ended, source="scraping"),
            publish(nc, nats_prefix, "scraping.job.completed", ended, source="scraping"),
        )
        await publish(
            nc, nats_prefix, "campaign.campaign.created",
            {"campaign_id": uuid.uuid4(), "user_id": user.id, "name": "x", "status": "draft",
             "search_type": "keyword"}, source="campaign",
        )  # fmt: skip
        await publish(
            nc, nats_prefix, "campaign.campaign.deleted",
            {"campaign_id": uuid.uuid4(), "user_id": user.id}, source="campaign",
        )  # fmt: skip

        async def settled() -> bool:
            c = await counters(committed, user.id)
            return (c["creators"], c["campaigns"]) == (320, 2)

        await eventually(settled)
    assert (await counters(committed, user.id))["creators"] == 320
