"""Local billing: in development without Stripe, billing sells plans itself.

Checkout answers a ``checkout_url`` to billing's own page; completing it sends Stripe's
webhooks, signed, to billing's own ``POST /webhooks/stripe`` — the plan changes through the
same code as a real payment. In ``test`` and ``production`` the page does not exist.
"""

import asyncio
import os
import re

import pytest
import sqlalchemy as sa

from services.billing import local_stripe
from shared.models.enums import BillingInterval
from shared.settings import Settings

from ..support.procs import SCOUT
from ..support.services import running_api
from .conftest import billing_user, subscription_row


def _auth(signing_keys, user) -> dict[str, str]:
    return {"Authorization": f"Bearer {signing_keys.token(user.user_id)}"}


@pytest.fixture
def dev_settings(service_settings) -> Settings:
    return service_settings.model_copy(update={"scout_env": "development"})


async def _events(engine, user_id) -> list[tuple[str, dict]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            sa.text("SELECT type, data FROM events WHERE user_id = :u ORDER BY seq"),
            {"u": user_id},
        )
    return [(r.type, r.data) for r in rows]


async def test_checkout_without_stripe_in_development_is_a_local_page_that_sets_the_plan(
    committed, dev_settings, signing_keys, monkeypatch
):
    # The configured price ids are what the webhooks carry, as Stripe's would.
    monkeypatch.setenv("STRIPE_PRICE_SCALE_YEARLY", "price_1ScaleYearlyLocal")
    user = await billing_user(committed)
    async with running_api("billing", dev_settings) as client:
        started = await client.post(
            "/billing/checkout",
            json={"plan": "scale", "interval": "yearly"},
            headers=_auth(signing_keys, user),
        )
        assert started.status_code == 200, started.text
        body = started.json()
        assert body["mode"] == "checkout" and body["trial_days"] == 7
        assert body["checkout_url"] == f"{client.base_url}/dev/checkout/{body['session_id']}"

        page = await client.get(body["checkout_url"])
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        text = re.sub(r"<[^>]+>", " ", page.text)
        for shown in ("Subscribe to Scale", "$5,748.00", "/ year", "7-day free trial"):
            assert shown in text, shown
        assert "Complete payment" in page.text and "Cancel" in page.text

        paid = await client.post(f"{body['checkout_url']}/complete")
        assert paid.status_code == 200, paid.text
        assert "Payment complete" in paid.text
        again = await client.post(f"{body['checkout_url']}/complete")
        assert again.status_code == 200

        status = (await client.get("/billing/status", headers=_auth(signing_keys, user))).json()
    assert (status["plan"], status["subscription_status"]) == ("scale", "trialing")
    assert (status["trial_status"], status["trial_days_left"]) == ("active", 7)
    assert status["billing_interval"] == "yearly"
    row = await subscription_row(committed, user.id)
    assert row["stripe_customer_id"] == local_stripe.customer_id(user.user_id)
    assert row["stripe_subscription_id"].startswith("sub_local_")
    async with committed.connect() as conn:
        deliveries = (
            await conn.execute(
                sa.text(
                    "SELECT event_type, status FROM webhook_events WHERE source = 'stripe'"
                    " AND payload -> 'data' -> 'object' ->> 'customer' = :c ORDER BY created_at"
                ),
                {"c": row["stripe_customer_id"]},
            )
        ).all()
    # Each event was received once (the second completion was answered as a duplicate).
    assert [tuple(d) for d in deliveries] == [
        ("checkout.session.completed", "completed"),
        ("customer.subscription.created", "completed"),
    ]
    changes = [data for type_, data in await _events(committed, user.id) if "changed" in type_]
    assert len(changes) == 1 and changes[0]["billing_interval"] == "yearly"


async def test_a_returning_subscriber_pays_at_once_and_cancel_changes_nothing(
    committed, dev_settings, signing_keys
):
    user = await billing_user(committed, plan="growth", status="canceled")
    async with running_api("billing", dev_settings) as client:
        started = await client.post(
            "/billing/checkout",
            json={"plan": "pro", "interval": "monthly"},
            headers=_auth(signing_keys, user),
        )
        url = started.json()["checkout_url"]
        assert started.json()["trial_days"] == 0
        page = await client.get(url)
        assert "No trial" in page.text and "$" in page.text
        cancelled = await client.post(f"{url}/cancel")
        assert cancelled.status_code == 200 and "Nothing was charged" in cancelled.text
        before = (await client.get("/billing/status", headers=_auth(signing_keys, user))).json()
        assert (before["plan"], before["subscription_status"]) == ("growth", "canceled")
        await client.post(f"{url}/complete")
        after = (await client.get("/billing/status", headers=_auth(signing_keys, user))).json()
    assert (after["plan"], after["subscription_status"], after["billing_interval"]) == (
        "pro",
        "active",
        "monthly",
    )


async def test_a_session_id_billing_did_not_make_is_not_found(committed, dev_settings):
    purchase = local_stripe.Purchase(
        clerk_user_id="user_x",
        plan="pro",
        interval=BillingInterval.monthly,
        trial_days=7,
        customer="cus_x",
        expires_at=2**31,
    )
    forged = local_stripe.new_session("whsec_not_ours", purchase)
    expired = local_stripe.new_session(
        dev_settings.stripe_webhook_secret,
        local_stripe.Purchase(**{**purchase.__dict__, "expires_at": 1}),
    )
    async with running_api("billing", dev_settings) as client:
        for session_id in (forged, expired, "cs_local_garbage", "x" * 3000):
            for answer in (
                await client.get(f"/dev/checkout/{session_id}"),
                await client.post(f"/dev/checkout/{session_id}/complete"),
            ):
                assert answer.status_code in (404, 422), answer.text
                if len(session_id) <= 2000:
                    assert answer.json()["code"] == "checkout_session_not_found"


@pytest.mark.parametrize("env", ["test", "production"])
async def test_outside_development_there_is_no_local_page_and_checkout_stays_503(
    env, committed, service_settings, signing_keys
):
    settings = service_settings.model_copy(update={"scout_env": env})
    user = await billing_user(committed)
    session_id = local_stripe.new_session(
        settings.stripe_webhook_secret,
        local_stripe.Purchase(user.user_id, "pro", BillingInterval.monthly, 0, "cus_x", 2**31),
    )
    async with running_api("billing", settings) as client:
        checkout = await client.post(
            "/billing/checkout",
            json={"plan": "growth", "interval": "monthly"},
            headers=_auth(signing_keys, user),
        )
        page = await client.get(f"/dev/checkout/{session_id}")
        complete = await client.post(f"/dev/checkout/{session_id}/complete")
        paths = (await client.get("/openapi.json")).json()["paths"]
    assert (checkout.status_code, checkout.json()["code"]) == (503, "billing_provider_unavailable")
    assert (page.status_code, page.json()["code"]) == (404, "not_found")
    assert complete.status_code in (404, 405) and complete.json()["code"] != "internal_error"
    assert not [p for p in paths if p.startswith("/dev/")]
    assert (await subscription_row(committed, user.id))["current_plan"] is None


def test_the_events_are_shaped_as_stripe_sends_them():
    purchase = local_stripe.Purchase(
        "user_a", "growth", BillingInterval.monthly, 7, "cus_local_a", 2**31
    )
    completed, created = local_stripe.purchase_events(
        purchase, session_id="cs_local_x.y", status="trialing", unit_amount=19900, now=1_000_000
    )
    assert completed["type"] == "checkout.session.completed"
    session = completed["data"]["object"]
    assert (session["mode"], session["client_reference_id"]) == ("subscription", "user_a")
    assert session["subscription"] == created["data"]["object"]["id"]
    sub = created["data"]["object"]
    item = sub["items"]["data"][0]
    assert item["price"]["id"] == "price_growth_monthly"
    assert item["price"]["recurring"]["interval"] == "month"  # Stripe's own spelling
    assert (sub["trial_start"], sub["trial_end"]) == (1_000_000, 1_000_000 + 7 * 86400)
    assert sub["metadata"] == {"user_id": "user_a", "plan": "growth", "interval": "monthly"}
    # The same session always yields the same ids: a repeat is a duplicate to billing.
    again = local_stripe.purchase_events(
        purchase, session_id="cs_local_x.y", status="trialing", unit_amount=19900, now=2_000_000
    )
    assert [e["id"] for e in again] == [completed["id"], created["id"]]


async def _scout(*args: str, **env: str) -> tuple[int, str]:
    """The real ``scout`` command in a child process (its own event loop), output merged."""
    proc = await asyncio.create_subprocess_exec(
        SCOUT, *args,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 120)
    return proc.returncode or 0, out.decode()


async def test_scout_billing_subscribe_puts_a_user_on_a_plan_from_a_terminal(
    committed, dev_settings, signing_keys, monkeypatch
):
    # Billing (in this process) and the command (a child) share the configured price ids.
    monkeypatch.setenv("STRIPE_PRICE_GROWTH_MONTHLY", "price_1GrowthMonthlyLocal")
    first = await billing_user(committed)
    second = await billing_user(committed)
    async with running_api("billing", dev_settings) as client:
        env = {"SCOUT_ENV": "development", "BILLING_PORT": str(client.base_url.port)}
        code, out = await _scout("billing", "subscribe", first.user_id, "--plan", "growth", **env)
        assert code == 0, out
        assert f"{first.user_id} is on Growth (active, billed monthly)" in out
        code, out = await _scout(
            "billing", "subscribe", second.user_id,
            "--plan", "scale", "--interval", "yearly", "--status", "trialing",
            **env,
        )  # fmt: skip
        assert code == 0, out
        one = (await client.get("/billing/status", headers=_auth(signing_keys, first))).json()
        two = (await client.get("/billing/status", headers=_auth(signing_keys, second))).json()
        code, out = await _scout(
            "billing", "subscribe", "user_nobody", "--plan", "pro", "--wait", "1", **env
        )
        assert code == 1 and "Does user_nobody exist?" in out, out
        bogus, _ = await _scout("billing", "subscribe", first.user_id, "--plan", "free", **env)
        assert bogus == 2  # not a plan: refused before anything is sent
    assert (one["plan"], one["subscription_status"], one["billing_interval"]) == (
        "growth",
        "active",
        "monthly",
    )
    assert (two["plan"], two["subscription_status"], two["trial_days_left"]) == (
        "scale",
        "trialing",
        7,
    )


@pytest.mark.parametrize(
    "env", [{"SCOUT_ENV": "test"}, {"SCOUT_ENV": "development", "STRIPE_SECRET_KEY": "sk_x"}]
)
async def test_scout_billing_subscribe_refuses_where_billing_does_not_sell_plans(env):
    code, out = await _scout("billing", "subscribe", "user_a", "--plan", "growth", **env)
    assert code == 2 and "is for development without Stripe" in out
