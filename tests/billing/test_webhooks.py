"""Stripe webhooks over HTTP: signatures, duplicates, concurrency, order, crashes."""

import asyncio
import random
import time

import orjson
import sqlalchemy as sa

from shared.settings import DEV_STRIPE_WEBHOOK_SECRET
from tests.support.fake_stripe import FakeStripe, sign

from ..support.services import running_api
from .conftest import billing_user, subscription_row

SECRET = DEV_STRIPE_WEBHOOK_SECRET


async def _send(client, body: bytes, *, secret: str = SECRET, timestamp: int | None = None):
    return await client.post(
        "/webhooks/stripe",
        content=body,
        headers={
            "Stripe-Signature": sign(body, secret, timestamp),
            "Content-Type": "application/json",
        },
    )


async def _count(engine, sql: str, **params) -> int:
    async with engine.connect() as conn:
        return await conn.scalar(sa.text(sql), params)


def _lifecycle(fake: FakeStripe, customer: str, clerk: str, t0: int) -> list[bytes]:
    """created (trialing) → updated (active) → updated (scale) → deleted, one second apart."""
    base = dict(customer=customer, user_id=clerk, id=f"sub_{clerk}")
    trial = dict(trial_start=t0, trial_end=t0 + 7 * 86400)
    steps = [
        ("customer.subscription.created", dict(price="price_growth_monthly", status="trialing")),
        ("customer.subscription.updated", dict(price="price_growth_monthly", status="active")),
        ("customer.subscription.updated", dict(price="price_scale_yearly", status="active")),
        ("customer.subscription.deleted", dict(price="price_scale_yearly", status="canceled")),
    ]
    bodies = []
    for i, (type_, fields) in enumerate(steps):
        sub = dict(fake.subscription(**base, **trial, created=t0, **fields))
        if fields["status"] == "canceled":
            sub["canceled_at"] = t0 + i
        bodies.append(fake.event(type_, sub, created=t0 + i))
    return bodies


async def test_forged_and_stale_signatures_are_rejected(committed, service_settings):
    fake = FakeStripe()
    user = await billing_user(committed)
    body = fake.event(
        "customer.subscription.updated",
        fake.subscription(customer="cus_x", price="price_pro_monthly", user_id=user.user_id),
    )
    async with running_api("billing", service_settings) as client:
        forged = await _send(client, body, secret="whsec_wrong")
        stale = await _send(client, body, timestamp=int(time.time()) - 301)
        missing = await client.post("/webhooks/stripe", content=body)
        tampered = await client.post(
            "/webhooks/stripe",
            content=body.replace(b"pro", b"scale"),
            headers={"Stripe-Signature": sign(body, SECRET)},
        )
        fresh_enough = await _send(client, body, timestamp=int(time.time()) - 250)
    assert [r.status_code for r in (forged, stale, missing, tampered)] == [400] * 4
    assert {r.json()["code"] for r in (forged, stale, missing, tampered)} == {"invalid_signature"}
    assert fresh_enough.status_code == 200, fresh_enough.text
    assert await _count(committed, "SELECT count(*) FROM webhook_events") == 1


async def test_duplicates_sequential_and_concurrent_apply_once(committed, service_settings):
    fake = FakeStripe()
    user = await billing_user(committed)
    sub = fake.subscription(
        customer="cus_dup", price="price_growth_monthly", status="active", user_id=user.user_id
    )
    body = fake.event("customer.subscription.created", sub)
    async with running_api("billing", service_settings) as client:
        replies = await asyncio.gather(*(_send(client, body) for _ in range(10)))
        again = await _send(client, body)
    # one applied; the others saw it completed (200) or still in flight (409, Stripe retries)
    applied = [r for r in replies if r.status_code == 200 and not r.json()["duplicate"]]
    assert len(applied) == 1
    assert all(r.status_code in (200, 409) for r in replies)
    assert again.json() == {"received": True, "duplicate": True, "outcome": "already_completed"}
    assert (
        await _count(
            committed,
            "SELECT count(*) FROM events WHERE type = 'billing.subscription.changed'"
            " AND aggregate_id = :u",
            u=str(user.id),
        )
        == 1
    )
    row = await subscription_row(committed, user.id)
    assert (row["current_plan"], row["subscription_status"]) == ("growth", "active")
    assert row["stripe_customer_id"] == "cus_dup"


async def test_storm_of_shuffled_duplicates_ends_like_in_order(committed, service_settings):
    fake = FakeStripe()
    t0 = int(time.time()) - 100
    in_order = await billing_user(committed)
    stormed = await billing_user(committed)
    ordered_bodies = _lifecycle(fake, "cus_in_order", in_order.user_id, t0)
    storm = _lifecycle(fake, "cus_storm", stormed.user_id, t0) * 3
    random.Random(7).shuffle(storm)
    async with running_api("billing", service_settings) as client:
        for body in ordered_bodies:
            assert (await _send(client, body)).status_code == 200
        replies = await asyncio.gather(*(_send(client, b) for b in storm))
        # a 409 means "in flight elsewhere": Stripe would retry it, so do that
        for body, reply in zip(storm, replies, strict=True):
            if reply.status_code == 409:
                assert (await _send(client, body)).status_code == 200
    assert all(r.status_code in (200, 409) for r in replies)
    a = await subscription_row(committed, in_order.id)
    b = await subscription_row(committed, stormed.id)
    keys = ("current_plan", "subscription_status", "billing_interval", "trial_end_date")
    assert {k: a[k] for k in keys} == {k: b[k] for k in keys}
    assert (b["current_plan"], b["subscription_status"]) == ("scale", "canceled")
    assert b["stripe_state_at"] == a["stripe_state_at"]


async def test_an_older_event_never_overwrites_newer_state(committed, service_settings):
    fake = FakeStripe()
    user = await billing_user(committed)
    t0 = int(time.time()) - 50
    created, active, *_ = _lifecycle(fake, "cus_ooo", user.user_id, t0)
    async with running_api("billing", service_settings) as client:
        assert (await _send(client, active)).json()["outcome"] == "applied"
        late = await _send(client, created)
    assert late.json()["outcome"] == "stale"
    assert (await subscription_row(committed, user.id))["subscription_status"] == "active"


async def test_a_crashed_attempt_is_retried_after_its_lease(committed, service_settings):
    fake = FakeStripe()
    user = await billing_user(committed)
    sub = fake.subscription(customer="cus_crash", price="price_pro_monthly", user_id=user.user_id)
    crashed = fake.event("customer.subscription.created", sub)
    live = fake.event("customer.subscription.updated", sub)
    async with committed.begin() as conn:
        for body, lease in ((crashed, "-1 minute"), (live, "+1 minute")):
            event = orjson.loads(body)
            await conn.execute(
                sa.text(
                    "INSERT INTO webhook_events (id, event_id, source, event_type, status,"
                    " locked_until) VALUES (gen_random_uuid(), :e, 'stripe', :t, 'processing',"
                    f" now() + interval '{lease}')"
                ),
                {"e": event["id"], "t": event["type"]},
            )
    async with running_api("billing", service_settings) as client:
        retried = await _send(client, crashed)
        busy = await _send(client, live)
    assert retried.status_code == 200 and retried.json()["outcome"] == "applied"
    assert busy.status_code == 409 and busy.json()["code"] == "webhook_in_progress"
    async with committed.connect() as conn:
        row = (
            await conn.execute(
                sa.text("SELECT status, retry_count FROM webhook_events WHERE event_id = :e"),
                {"e": orjson.loads(crashed)["id"]},
            )
        ).one()
    assert tuple(row) == ("completed", 1)
    assert (await subscription_row(committed, user.id))["current_plan"] == "pro"


async def test_a_failed_event_answers_500_and_succeeds_on_retry(committed, service_settings):
    fake = FakeStripe()
    clerk = f"user_later{time.time_ns()}"
    sub = fake.subscription(customer="cus_later", price="price_growth_monthly", user_id=clerk)
    body = fake.event("customer.subscription.created", sub)
    async with running_api("billing", service_settings) as client:
        first = await _send(client, body)  # the user does not exist yet
        user = await billing_user(committed, clerk=clerk)
        second = await _send(client, body)
    assert first.status_code == 500 and first.json()["code"] == "webhook_processing_failed"
    assert second.status_code == 200 and second.json()["outcome"] == "applied"
    assert (await subscription_row(committed, user.id))["current_plan"] == "growth"


async def test_checkout_completed_links_the_customer_and_applies_the_subscription(
    committed, stripe_settings, stripe_fake
):
    user = await billing_user(committed)
    t0 = int(time.time())
    sub = stripe_fake.subscription(
        customer="cus_new", price="price_growth_yearly", status="trialing",
        trial_start=t0, trial_end=t0 + 7 * 86400,
    )  # fmt: skip
    session = {
        "id": "cs_1", "object": "checkout.session", "mode": "subscription",
        "customer": "cus_new", "client_reference_id": user.user_id, "subscription": sub["id"],
    }  # fmt: skip
    payment = {"id": "in_1", "object": "invoice", "customer": "cus_new", "subscription": sub["id"]}
    async with running_api("billing", stripe_settings) as client:
        done = await _send(client, stripe_fake.event("checkout.session.completed", session))
        stripe_fake.subscriptions[sub["id"]]["status"] = "active"
        paid = await _send(
            client, stripe_fake.event("invoice.payment_succeeded", payment, created=t0 + 5)
        )
        other = await _send(client, stripe_fake.event("customer.created", {"id": "cus_new"}))
    assert done.json()["outcome"] == "applied" and paid.json()["outcome"] == "applied"
    assert other.json()["outcome"] == "unhandled"
    row = await subscription_row(committed, user.id)
    assert (row["current_plan"], row["subscription_status"], row["billing_interval"]) == (
        "growth", "active", "yearly",
    )  # fmt: skip
    assert row["stripe_customer_id"] == "cus_new" and row["stripe_subscription_id"] == sub["id"]
    async with committed.connect() as conn:
        types = (
            await conn.scalars(
                sa.text("SELECT type FROM events WHERE user_id = :u ORDER BY seq"), {"u": user.id}
            )
        ).all()
    assert types == [
        "billing.subscription.changed",
        "billing.trial.started",
        "billing.subscription.changed",
        "billing.trial.converted",
    ]
