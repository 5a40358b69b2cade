"""update_user_profile: routing by table, upserts, clearing, and the ownership rule."""

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from shared.models import User, UserBilling, UserSubscription, UserSystemData, UserUsage
from shared.queries.users import (
    FieldNotOwned,
    InvalidProfileValue,
    UnknownProfileField,
    UserNotFound,
    get_user_profile,
    update_user_profile,
)

from ..factories import make_user

STAMP = datetime(2026, 2, 1, 9, 30, tzinfo=UTC)


async def row(session, model, user):
    """The child row of ``user`` in ``model``'s table, or None; read fresh (not the identity map)."""
    result = await session.execute(
        sa.select(model.__table__).where(model.__table__.c.user_id == user.id)
    )
    rows = result.mappings().all()
    assert len(rows) <= 1
    return rows[0] if rows else None


async def test_fields_are_written_to_their_own_tables(session):
    user = await make_user(session)
    profile = await update_user_profile(
        session,
        user.user_id,
        full_name="Ada Lovelace",
        current_plan="growth",
        stripe_customer_id="cus_route",
        usage_campaigns_current=2,
        last_webhook_event="customer.subscription.created",
        last_webhook_timestamp=STAMP,
    )

    users_row = (
        (await session.execute(sa.select(User.__table__).where(User.__table__.c.id == user.id)))
        .mappings()
        .one()
    )
    assert users_row["full_name"] == "Ada Lovelace"
    assert (await row(session, UserSubscription, user))["current_plan"] == "growth"
    assert (await row(session, UserBilling, user))["stripe_customer_id"] == "cus_route"
    assert (await row(session, UserUsage, user))["usage_campaigns_current"] == 2
    system = await row(session, UserSystemData, user)
    assert (system["last_webhook_event"], system["last_webhook_timestamp"]) == (
        "customer.subscription.created",
        STAMP,
    )
    # The returned profile is the fresh state, derived limits included.
    assert (profile.full_name, profile.current_plan, profile.creators_limit) == (
        "Ada Lovelace",
        "growth",
        6000,
    )


async def test_missing_child_rows_are_created(session):
    user = await make_user(session, children=False)
    await update_user_profile(
        session,
        user.user_id,
        subscription_status="trialing",
        stripe_customer_id="cus_new",
        usage_creators_current_month=5,
        last_webhook_event="checkout.session.completed",
    )

    subscription = await row(session, UserSubscription, user)
    assert (subscription["subscription_status"], subscription["billing_sync_status"]) == (
        "trialing",
        "pending",
    )
    assert (await row(session, UserBilling, user))["stripe_customer_id"] == "cus_new"
    usage = await row(session, UserUsage, user)
    assert (usage["usage_creators_current_month"], usage["usage_campaigns_current"]) == (5, 0)
    # A late system row still says when the user signed up.
    assert (await row(session, UserSystemData, user))["signup_timestamp"] == user.created_at


async def test_untouched_tables_get_no_row(session):
    user = await make_user(session, children=False)
    await update_user_profile(session, user.user_id, card_brand="visa")
    assert await row(session, UserBilling, user) is not None
    for model in (UserSubscription, UserUsage, UserSystemData):
        assert await row(session, model, user) is None, model.__tablename__


async def test_existing_child_row_is_updated_in_place(session):
    user = await make_user(session)
    await update_user_profile(session, user.user_id, card_brand="visa", card_last4="4242")
    await update_user_profile(session, user.user_id, stripe_customer_id="cus_again")

    billing = await row(session, UserBilling, user)  # asserts there is still exactly one row
    assert (billing["stripe_customer_id"], billing["card_brand"], billing["card_last4"]) == (
        "cus_again",
        "visa",
        "4242",
    )


async def test_none_clears_and_omitted_fields_are_untouched(session):
    user = await make_user(session, full_name="Keep Me", industry="fitness")
    await update_user_profile(session, user.user_id, intended_plan="scale", card_brand="amex")

    profile = await update_user_profile(session, user.user_id, intended_plan=None, industry=None)

    assert profile.intended_plan is None
    assert profile.industry is None
    assert profile.full_name == "Keep Me"
    assert profile.card_brand == "amex"


async def test_not_null_field_cannot_be_cleared(session):
    user = await make_user(session)
    with pytest.raises(InvalidProfileValue, match="subscription_status"):
        await update_user_profile(session, user.user_id, subscription_status=None)


@pytest.mark.parametrize(
    "field", ["favourite_colour", "id", "user_id", "created_at", "updated_at", "trial_status"]
)
async def test_unknown_field_is_rejected_by_name_before_anything_is_written(session, field):
    user = await make_user(session, full_name="Before")
    with pytest.raises(UnknownProfileField, match=field) as info:
        await update_user_profile(session, user.user_id, full_name="After", **{field: "x"})
    assert info.value.field == field
    assert (await get_user_profile(session, user.user_id)).full_name == "Before"


@pytest.mark.parametrize(
    ("field", "value", "table"),
    [
        ("current_plan", "pro", "user_subscriptions"),
        ("stripe_customer_id", "cus_x", "user_billing"),
        ("usage_campaigns_current", 0, "user_usage"),
        ("full_name", "Mallory", "users"),
        ("last_webhook_event", "x", "user_system_data"),
    ],
)
async def test_campaign_service_may_not_write_profile_tables(session, field, value, table):
    user = await make_user(session)
    with pytest.raises(FieldNotOwned) as info:
        await update_user_profile(session, user.user_id, service="campaign", **{field: value})
    assert (info.value.field, info.value.table) == (field, table)
    assert field in str(info.value) and table in str(info.value)


async def test_billing_service_writes_its_own_fields_only(session):
    user = await make_user(session)
    profile = await update_user_profile(
        session,
        user.user_id,
        service="billing",
        current_plan="pro",
        stripe_subscription_id="sub_owned",
        plan_creators_limit=123,
    )
    assert (profile.current_plan, profile.stripe_subscription_id, profile.creators_limit) == (
        "pro",
        "sub_owned",
        123,
    )
    with pytest.raises(FieldNotOwned, match="users"):
        await update_user_profile(session, user.user_id, service="billing", full_name="Eve")


async def test_identity_service_writes_users_and_system_data(session):
    user = await make_user(session)
    profile = await update_user_profile(
        session, user.user_id, service="identity", onboarding_step="info_captured",
        email_schedule_status={"welcome": {"status": "sent"}},
    )  # fmt: skip
    assert profile.onboarding_step == "info_captured"
    assert profile.email_schedule_status == {"welcome": {"status": "sent"}}


async def test_absent_user_is_reported(session):
    with pytest.raises(UserNotFound, match="user_ghost"):
        await update_user_profile(session, "user_ghost", full_name="Nobody")
    with pytest.raises(UserNotFound):
        await update_user_profile(session, "user_ghost", current_plan="pro")


async def test_update_flushes_without_committing(session):
    user = await make_user(session)
    await update_user_profile(session, user.user_id, full_name="Uncommitted")
    assert session.in_transaction()
    await session.rollback()
    assert await get_user_profile(session, user.user_id) is None


async def test_upsert_sets_only_the_given_fields_on_an_existing_row(session):
    user = await make_user(session)
    await session.execute(
        sa.update(UserSystemData)
        .where(UserSystemData.user_id == user.id)
        .values(signup_timestamp=STAMP)
    )
    await update_user_profile(session, user.user_id, last_webhook_event="invoice.paid")
    system = await row(session, UserSystemData, user)
    assert (system["signup_timestamp"], system["last_webhook_event"]) == (STAMP, "invoice.paid")
