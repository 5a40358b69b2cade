"""Billing API on a real socket: plans, status (derived trial, access gate), checkout via Stripe."""

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from services.billing.service.account import access_allowed, trial_days_left
from shared.models.enums import TrialStatus

from ..support.services import running_api
from .conftest import billing_user, set_subscription, with_stripe_subscription


def _auth(signing_keys, user) -> dict[str, str]:
    return {"Authorization": f"Bearer {signing_keys.token(user.user_id)}"}


async def _onboarded(engine, user_id) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            sa.text("UPDATE users SET onboarding_step = 'completed' WHERE id = :u"),
            {"u": user_id},
        )


async def test_plans_are_the_active_ones_in_display_order(committed, service_settings):
    async with running_api("billing", service_settings) as client:
        response = await client.get("/plans")
    assert response.status_code == 200
    items = response.json()["items"]
    async with committed.connect() as conn:
        expected = (
            await conn.scalars(
                sa.text(
                    "SELECT plan_key FROM subscription_plans WHERE is_active"
                    " ORDER BY display_order, plan_key"
                )
            )
        ).all()
    assert [p["plan_key"] for p in items] == expected and len(items) >= 3
    growth = next(p for p in items if p["plan_key"] == "growth")
    assert growth["monthly_price"] == 19900 and growth["campaigns_limit"] == -1
    assert set(growth) >= {
        "plan_key", "display_name", "monthly_price", "yearly_price", "campaigns_limit",
        "creators_limit", "enrichments_limit", "features", "is_legacy",
    }  # fmt: skip


async def test_status_derives_trial_and_access(committed, service_settings, signing_keys):
    trialing = await billing_user(committed, plan="glow_up", status="trialing")
    now = datetime.now(UTC)
    await set_subscription(
        committed,
        trialing.id,
        trial_start_date=now - timedelta(days=3),
        trial_end_date=now + timedelta(days=3, hours=12),
    )
    await _onboarded(committed, trialing.id)
    expired = await billing_user(committed, plan="glow_up", status="trialing")
    await set_subscription(
        committed,
        expired.id,
        trial_start_date=now - timedelta(days=8),
        trial_end_date=now - timedelta(seconds=1),
    )
    await _onboarded(committed, expired.id)
    fresh = await billing_user(committed)
    async with running_api("billing", service_settings) as client:
        t = (await client.get("/billing/status", headers=_auth(signing_keys, trialing))).json()
        e = (await client.get("/billing/status", headers=_auth(signing_keys, expired))).json()
        f = (await client.get("/billing/status", headers=_auth(signing_keys, fresh))).json()
        anonymous = await client.get("/billing/status")
    assert (t["trial_status"], t["trial_days_left"], t["access_allowed"]) == ("active", 4, True)
    assert t["usage"]["campaigns"] == {"used": 0, "limit": 3, "reserved": 0}
    assert (e["trial_status"], e["trial_days_left"], e["access_allowed"]) == ("expired", 0, False)
    assert f["plan"] is None and f["subscription_status"] == "none"
    assert f["trial_status"] == "pending" and f["access_allowed"] is False
    assert f["usage"]["creators"] == {"used": 0, "limit": 0, "reserved": 0}
    assert anonymous.status_code == 401


def test_trial_derivation_at_the_boundaries():
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert trial_days_left(TrialStatus.active, now + timedelta(days=7), now) == 7
    assert trial_days_left(TrialStatus.active, now + timedelta(days=6, seconds=1), now) == 7
    assert trial_days_left(TrialStatus.active, now + timedelta(seconds=1), now) == 1
    assert trial_days_left(TrialStatus.expired, now - timedelta(seconds=1), now) == 0
    assert access_allowed("active", TrialStatus.converted, "completed")
    assert not access_allowed("active", TrialStatus.converted, "plan_selected")
    assert access_allowed("trialing", TrialStatus.active, "completed")
    assert not access_allowed("trialing", TrialStatus.expired, "completed")


async def test_checkout_is_503_when_stripe_is_not_configured(
    committed, service_settings, signing_keys
):
    user = await billing_user(committed)
    async with running_api("billing", service_settings) as client:
        response = await client.post(
            "/billing/checkout",
            json={"plan": "growth", "interval": "monthly"},
            headers=_auth(signing_keys, user),
        )
    assert response.status_code == 503
    assert response.json()["code"] == "billing_provider_unavailable"


async def test_an_unknown_plan_or_interval_is_422_before_any_provider_check(
    committed, service_settings, signing_keys
):
    user = await billing_user(committed)
    async with running_api("billing", service_settings) as client:  # no Stripe configured
        answers = {
            name: await client.post(
                "/billing/checkout", json=body, headers=_auth(signing_keys, user)
            )
            for name, body in {
                "plan": {"plan": "free", "interval": "monthly"},
                "interval": {"plan": "growth", "interval": "month"},
            }.items()
        }
    for name, answer in answers.items():
        assert answer.status_code == 422, (name, answer.text)
        body = answer.json()
        assert body["code"] == "validation_error" and body["errors"][0]["loc"] == ["body", name]
    # The allowed values are listed as a client sends them.
    assert "'monthly' or 'yearly'" in answers["interval"].json()["detail"]
    assert "'growth'" in answers["plan"].json()["detail"]
    assert "<" not in answers["plan"].json()["detail"]


async def test_checkout_trial_only_for_a_first_subscription(
    committed, stripe_settings, stripe_fake, signing_keys
):
    first = await billing_user(committed)
    returning = await billing_user(committed, plan="growth", status="canceled")
    await set_subscription(
        committed,
        returning.id,
        trial_start_date=datetime.now(UTC) - timedelta(days=60),
        trial_end_date=datetime.now(UTC) - timedelta(days=53),
    )
    async with running_api("billing", stripe_settings) as client:
        a = await client.post(
            "/billing/checkout",
            json={"plan": "scale", "interval": "yearly"},
            headers=_auth(signing_keys, first),
        )
        b = await client.post(
            "/billing/checkout",
            json={"plan": "growth", "interval": "monthly"},
            headers=_auth(signing_keys, returning),
        )
    assert a.status_code == 200, a.text
    assert a.json()["trial_days"] == 7 and a.json()["checkout_url"].startswith(stripe_fake.url)
    params = stripe_fake.sessions[a.json()["session_id"]]["params"]
    assert params["client_reference_id"] == first.user_id
    assert params["subscription_data"]["metadata"]["user_id"] == first.user_id
    assert params["subscription_data"]["trial_period_days"] == "7"
    assert params["line_items"][0]["price"] == "price_scale_yearly"
    assert params["customer"] in stripe_fake.customers
    assert b.status_code == 200 and b.json()["trial_days"] == 0
    params_b = stripe_fake.sessions[b.json()["session_id"]]["params"]
    assert "trial_period_days" not in params_b["subscription_data"]
    async with committed.connect() as conn:
        stored = await conn.scalar(
            sa.text("SELECT stripe_customer_id FROM user_billing WHERE user_id = :u"),
            {"u": first.id},
        )
    assert stored == params["customer"]


async def test_checkout_with_a_live_subscription_changes_plan_in_place(
    committed, stripe_settings, stripe_fake, signing_keys
):
    user = await billing_user(committed, plan="growth", status="active")
    _, sub = await with_stripe_subscription(
        committed, stripe_fake, user, price="price_growth_monthly"
    )
    async with running_api("billing", stripe_settings) as client:
        response = await client.post(
            "/billing/checkout",
            json={"plan": "pro", "interval": "monthly"},
            headers=_auth(signing_keys, user),
        )
    assert response.status_code == 200, response.text
    assert response.json() == {
        "mode": "upgrade",
        "checkout_url": None,
        "session_id": None,
        "subscription_id": sub["id"],
        "trial_days": 0,
    }
    assert sub["items"]["data"][0]["price"]["id"] == "price_pro_monthly"
    assert not stripe_fake.sessions
