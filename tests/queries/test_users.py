"""The flattened profile: one statement, defaults for missing rows, derived limits and trial status."""

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from shared.models import UserBilling, UserSubscription, UserSystemData, UserUsage
from shared.models.enums import TrialStatus
from shared.queries.users import (
    DERIVED_FIELDS,
    FIELD_TABLES,
    PROFILE_FIELDS,
    PROFILE_TABLES,
    RESERVED_FIELDS,
    derive_trial_status,
    get_user_by_stripe_customer_id,
    get_user_profile,
)

from ..factories import make_user

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


async def set_row(session, model, user, **values):
    await session.execute(sa.update(model).where(model.user_id == user.id).values(**values))


async def test_profile_is_one_statement(session, statements):
    user = await make_user(session)
    with statements.counting():
        profile = await get_user_profile(session, user.user_id)
    assert statements.count == 1, statements.statements
    assert profile is not None
    assert (profile.id, profile.user_id, profile.email) == (user.id, user.user_id, user.email)


async def test_absent_user_has_no_profile(session, statements):
    await make_user(session)
    with statements.counting():
        assert await get_user_profile(session, "user_nobody") is None
    assert statements.count == 1


async def test_missing_child_rows_get_reference_defaults(session):
    user = await make_user(session, children=False)
    profile = await get_user_profile(session, user.user_id)
    now = (await session.execute(sa.select(sa.func.now()))).scalar_one()

    assert profile.current_plan is None
    assert profile.subscription_status == "none"
    assert profile.billing_sync_status == "pending"
    assert profile.stripe_customer_id is None
    assert profile.plan_features == {}
    assert profile.email_schedule_status == {}
    assert (
        profile.usage_campaigns_current,
        profile.usage_creators_current_month,
        profile.enrichments_current_month,
    ) == (0, 0, 0)
    assert profile.usage_reset_date == now
    assert profile.signup_timestamp == user.created_at
    assert profile.trial_status == TrialStatus.pending
    assert (profile.campaigns_limit, profile.creators_limit, profile.enrichments_limit) == (0, 0, 0)


async def test_child_rows_are_flattened_into_the_profile(session):
    user = await make_user(session)
    end = NOW + timedelta(days=3)
    await set_row(
        session,
        UserSubscription,
        user,
        current_plan="scale",
        intended_plan="pro",
        subscription_status="trialing",
        trial_end_date=end,
        billing_interval="yearly",
        billing_sync_status="webhook",
    )
    await set_row(session, UserBilling, user, stripe_customer_id="cus_flat", card_last4="4242")
    await set_row(
        session,
        UserUsage,
        user,
        plan_features={"csv": True},
        usage_campaigns_current=2,
        enrichments_current_month=9,
    )
    await set_row(
        session, UserSystemData, user, last_webhook_event="invoice.paid", email_schedule_status={}
    )

    profile = await get_user_profile(session, user.user_id, now=NOW)

    assert (profile.current_plan, profile.intended_plan) == ("scale", "pro")
    assert (profile.subscription_status, profile.trial_end_date) == ("trialing", end)
    assert (profile.billing_interval, profile.billing_sync_status) == ("yearly", "webhook")
    assert (profile.stripe_customer_id, profile.card_last4) == ("cus_flat", "4242")
    assert profile.plan_features == {"csv": True}
    assert (profile.usage_campaigns_current, profile.enrichments_current_month) == (2, 9)
    assert profile.last_webhook_event == "invoice.paid"
    assert profile.trial_status == TrialStatus.active
    assert (profile.campaigns_limit, profile.creators_limit, profile.enrichments_limit) == (
        -1,
        30000,
        1000,
    )


@pytest.mark.parametrize(
    ("plan", "campaigns_override", "creators_override", "expected"),
    [
        ("glow_up", None, None, (3, 1000, 50)),
        ("glow_up", 7, None, (7, 1000, 50)),
        ("glow_up", None, 2500, (3, 2500, 50)),
        ("growth", None, -1, (-1, -1, 500)),
        ("fame_flex", None, None, (-1, -1, -1)),
        (None, None, None, (0, 0, 0)),
        (None, 4, None, (4, 0, 0)),
    ],
    ids=["plan", "campaigns-override", "creators-override", "override-unlimited", "unlimited",
         "no-plan-is-zero", "override-without-plan"],
)  # fmt: skip
async def test_effective_limits(session, plan, campaigns_override, creators_override, expected):
    user = await make_user(session)
    await set_row(session, UserSubscription, user, current_plan=plan)
    await set_row(
        session,
        UserUsage,
        user,
        plan_campaigns_limit=campaigns_override,
        plan_creators_limit=creators_override,
    )
    profile = await get_user_profile(session, user.user_id)
    assert (profile.campaigns_limit, profile.creators_limit, profile.enrichments_limit) == expected


def test_profile_covers_every_column_of_the_five_tables():
    """A column added to a user table must be added to the profile (or exempted here)."""
    columns = {c.name for t in PROFILE_TABLES for c in t.c if c.name not in RESERVED_FIELDS}
    # The webhook ordering watermark is billing-internal: writable, not part of the profile.
    internal = {"stripe_state_at"}
    assert set(PROFILE_FIELDS) == (columns - internal) | RESERVED_FIELDS | DERIVED_FIELDS
    assert set(FIELD_TABLES) == columns


@pytest.mark.parametrize(
    ("status", "end", "expected"),
    [
        ("active", None, TrialStatus.converted),
        ("active", NOW - timedelta(days=1), TrialStatus.converted),
        ("trialing", NOW + timedelta(microseconds=1), TrialStatus.active),
        ("trialing", NOW, TrialStatus.expired),
        ("trialing", NOW - timedelta(days=1), TrialStatus.expired),
        ("trialing", None, TrialStatus.expired),
        ("canceled", NOW + timedelta(days=1), TrialStatus.cancelled),
        ("past_due", NOW + timedelta(days=1), TrialStatus.expired),
        ("unpaid", None, TrialStatus.expired),
        ("none", NOW - timedelta(microseconds=1), TrialStatus.expired),
        ("none", NOW, TrialStatus.pending),
        ("none", NOW + timedelta(days=7), TrialStatus.pending),
        ("none", None, TrialStatus.pending),
        (None, None, TrialStatus.pending),
    ],
)
def test_trial_status_derivation(status, end, expected):
    assert derive_trial_status(status, end, NOW) == expected


async def test_profile_trial_status_uses_the_given_time(session):
    user = await make_user(session)
    end = NOW + timedelta(hours=1)
    await set_row(
        session, UserSubscription, user, subscription_status="trialing", trial_end_date=end
    )
    assert (await get_user_profile(session, user.user_id, now=NOW)).trial_status == "active"
    assert (await get_user_profile(session, user.user_id, now=end)).trial_status == "expired"


async def test_user_by_stripe_customer_id(session, statements):
    user = await make_user(session)
    await make_user(session)
    await set_row(session, UserBilling, user, stripe_customer_id="cus_lookup")
    with statements.counting():
        found = await get_user_by_stripe_customer_id(session, "cus_lookup", now=NOW)
    assert statements.count == 1
    assert found == await get_user_profile(session, user.user_id, now=NOW)
    assert await get_user_by_stripe_customer_id(session, "cus_unknown") is None


async def test_deleted_at_is_reported_not_hidden(session):
    user = await make_user(session, deleted_at=NOW)
    assert (await get_user_profile(session, user.user_id)).deleted_at == NOW
