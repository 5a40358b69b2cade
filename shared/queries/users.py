"""The flattened user profile across the five user tables: read in one statement, written by routing.

The profile speaks the API's snake_case field names. Writes go through Core statements in the
caller's transaction (never committed here); ORM instances already loaded in the session are not
refreshed by them.
"""

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from shared import errors
from shared.db import DriverQuery
from shared.errors import BadRequest, ScoutError
from shared.models import (
    OWNERSHIP,
    SubscriptionPlan,
    User,
    UserBilling,
    UserSubscription,
    UserSystemData,
    UserUsage,
)
from shared.models.enums import SubscriptionStatus, TrialStatus

users = User.__table__
subscriptions = UserSubscription.__table__
billing = UserBilling.__table__
usage = UserUsage.__table__
system_data = UserSystemData.__table__
plans = SubscriptionPlan.__table__

# The 1:1 children in the order writes touch them (a fixed order keeps concurrent updates
# of one user from deadlocking each other).
CHILD_TABLES: tuple[sa.Table, ...] = (subscriptions, billing, usage, system_data)
PROFILE_TABLES: tuple[sa.Table, ...] = (users, *CHILD_TABLES)

# Keys and bookkeeping: never written through update_user_profile.
RESERVED_FIELDS = frozenset({"id", "user_id", "created_at", "updated_at"})


class UserProfileError(ScoutError):
    """Base of the profile helpers' errors."""


class UnknownProfileField(UserProfileError, BadRequest):
    code = "unknown_profile_field"

    def __init__(self, field: str) -> None:
        super().__init__(f"{field!r} is not a writable profile field.")
        self.field = field


class InvalidProfileValue(UserProfileError, BadRequest):
    code = "invalid_profile_value"

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field!r}: {reason}")
        self.field = field


class FieldNotOwned(UserProfileError):
    """A service tried to write another service's table: a bug in the caller, hence 500."""

    status_code = 500
    code = "field_not_owned"

    def __init__(self, field: str, table: str, service: str) -> None:
        owner = OWNERSHIP.get(table, "?")
        super().__init__(
            f"{field!r} lives in {table} (owned by {owner}); service {service!r} may not write it."
        )
        self.field, self.table, self.service = field, table, service


class UserNotFound(UserProfileError, errors.UserNotFound):
    def __init__(self, clerk_user_id: str) -> None:
        super().__init__(f"No user {clerk_user_id!r}.")
        self.clerk_user_id = clerk_user_id


class UserProfile(BaseModel):
    """One user across users + the four 1:1 children, with derived trial status and limits."""

    model_config = ConfigDict(frozen=True)

    # users
    id: uuid.UUID
    user_id: str
    email: str | None
    full_name: str | None
    business_name: str | None
    brand_description: str | None
    industry: str | None
    onboarding_step: str
    is_admin: bool
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None
    # user_subscriptions
    current_plan: str | None
    intended_plan: str | None
    subscription_status: str
    trial_start_date: datetime | None
    trial_end_date: datetime | None
    trial_conversion_date: datetime | None
    subscription_cancel_date: datetime | None
    subscription_renewal_date: datetime | None
    billing_interval: str | None
    current_period_end: datetime | None
    billing_sync_status: str
    # user_billing
    stripe_customer_id: str | None
    stripe_subscription_id: str | None
    payment_method_id: str | None
    card_last4: str | None
    card_brand: str | None
    card_exp_month: int | None
    card_exp_year: int | None
    billing_address_city: str | None
    billing_address_country: str | None
    billing_address_postal_code: str | None
    # user_usage
    plan_campaigns_limit: int | None
    plan_creators_limit: int | None
    plan_features: dict[str, Any]
    usage_campaigns_current: int
    usage_creators_current_month: int
    enrichments_current_month: int
    usage_reset_date: datetime
    # user_system_data
    signup_timestamp: datetime
    email_schedule_status: dict[str, Any]
    last_webhook_event: str | None
    last_webhook_timestamp: datetime | None
    # derived
    trial_status: TrialStatus
    campaigns_limit: int
    creators_limit: int
    enrichments_limit: int


PROFILE_FIELDS: tuple[str, ...] = tuple(UserProfile.model_fields)
DERIVED_FIELDS = frozenset(
    {"trial_status", "campaigns_limit", "creators_limit", "enrichments_limit"}
)


def derive_trial_status(
    subscription_status: str | None, trial_end_date: datetime | None, now: datetime
) -> TrialStatus:
    """Trial status from subscription status and trial end; never stored, so it cannot drift."""
    match subscription_status:
        case SubscriptionStatus.active:
            return TrialStatus.converted
        case SubscriptionStatus.trialing:
            if trial_end_date is not None and trial_end_date > now:
                return TrialStatus.active
            return TrialStatus.expired
        case SubscriptionStatus.canceled:
            return TrialStatus.cancelled
        case SubscriptionStatus.past_due | SubscriptionStatus.unpaid:
            return TrialStatus.expired
        case _:
            if trial_end_date is not None and trial_end_date < now:
                return TrialStatus.expired
            return TrialStatus.pending


# --- reading -----------------------------------------------------------------------------------


def _default(column: sa.Column, value: Any) -> sa.ColumnElement:
    """``coalesce(column, value)`` labelled with the column's name: a missing child row's default."""
    return sa.func.coalesce(column, value).label(column.name)


def _profile_select() -> sa.Select:
    """users LEFT JOIN the four children and the current plan: the whole profile in one row."""
    empty_object = sa.cast(sa.literal("{}"), JSONB)
    columns: list[sa.ColumnElement] = [
        *(users.c[name] for name in ("id", "user_id", "email", "full_name", "business_name")),
        *(users.c[name] for name in ("brand_description", "industry", "onboarding_step")),
        *(users.c[name] for name in ("is_admin", "created_at", "updated_at", "deleted_at")),
        subscriptions.c.current_plan,
        subscriptions.c.intended_plan,
        _default(subscriptions.c.subscription_status, SubscriptionStatus.none.value),
        *(
            subscriptions.c[name]
            for name in (
                "trial_start_date",
                "trial_end_date",
                "trial_conversion_date",
                "subscription_cancel_date",
                "subscription_renewal_date",
                "billing_interval",
                "current_period_end",
            )
        ),
        _default(subscriptions.c.billing_sync_status, "pending"),
        *(c for c in billing.c if c.name not in RESERVED_FIELDS),
        usage.c.plan_campaigns_limit,
        usage.c.plan_creators_limit,
        _default(usage.c.plan_features, empty_object),
        _default(usage.c.usage_campaigns_current, 0),
        _default(usage.c.usage_creators_current_month, 0),
        _default(usage.c.enrichments_current_month, 0),
        _default(usage.c.usage_reset_date, sa.func.now()),
        _default(system_data.c.signup_timestamp, users.c.created_at),
        _default(system_data.c.email_schedule_status, empty_object),
        system_data.c.last_webhook_event,
        system_data.c.last_webhook_timestamp,
        # Effective limits: the per-user override, else the plan's, else 0 (no plan = no allowance).
        sa.func.coalesce(usage.c.plan_campaigns_limit, plans.c.campaigns_limit, 0).label(
            "campaigns_limit"
        ),
        sa.func.coalesce(usage.c.plan_creators_limit, plans.c.creators_limit, 0).label(
            "creators_limit"
        ),
        # user_usage has no enrichments override column, so the plan decides alone.
        sa.func.coalesce(plans.c.enrichments_limit, 0).label("enrichments_limit"),
    ]
    joined = (
        users.outerjoin(subscriptions, subscriptions.c.user_id == users.c.id)
        .outerjoin(billing, billing.c.user_id == users.c.id)
        .outerjoin(usage, usage.c.user_id == users.c.id)
        .outerjoin(system_data, system_data.c.user_id == users.c.id)
        .outerjoin(plans, plans.c.plan_key == subscriptions.c.current_plan)
    )
    return sa.select(*columns).select_from(joined)


_PROFILE = _profile_select()
# Built once at import: SQLAlchemy caches the compiled form, only the parameter changes per call.
_BY_CLERK_ID = _PROFILE.where(users.c.user_id == sa.bindparam("clerk_user_id"))
_BY_STRIPE_CUSTOMER = _PROFILE.where(billing.c.stripe_customer_id == sa.bindparam("customer_id"))


def _to_profile(row: Mapping[str, Any], now: datetime | None) -> UserProfile:
    status = derive_trial_status(
        row["subscription_status"], row["trial_end_date"], now or datetime.now(UTC)
    )
    return UserProfile(**row, trial_status=status)


# The hottest reads (every request resolves its caller; GET /me reads the profile) run on the
# session's driver connection: the same statements, compiled once (``shared.db.DriverQuery``).
_BY_CLERK_ID_DRIVER = DriverQuery(_BY_CLERK_ID)
_BY_STRIPE_CUSTOMER_DRIVER = DriverQuery(_BY_STRIPE_CUSTOMER)
_LIVE_USER_ID = DriverQuery(
    sa.select(User.id).where(
        User.user_id == sa.bindparam("clerk_user_id", type_=sa.String), User.deleted_at.is_(None)
    )
)


async def get_user_profile(
    session: AsyncSession, clerk_user_id: str, *, now: datetime | None = None
) -> UserProfile | None:
    """The flattened profile of a Clerk user in one SQL statement, or None if there is no user."""
    row = await _BY_CLERK_ID_DRIVER.mapping(session, {"clerk_user_id": clerk_user_id})
    return None if row is None else _to_profile(row, now)


async def get_user_by_stripe_customer_id(
    session: AsyncSession, customer_id: str, *, now: datetime | None = None
) -> UserProfile | None:
    """The profile of the user whose ``user_billing`` holds ``customer_id`` (one statement)."""
    row = await _BY_STRIPE_CUSTOMER_DRIVER.mapping(session, {"customer_id": customer_id})
    return None if row is None else _to_profile(row, now)


async def live_user_id(session: AsyncSession, clerk_user_id: str) -> uuid.UUID | None:
    """The internal id of a live user — the key every other service scopes its rows by —
    or None when the Clerk id is unknown or the user is being deleted."""
    return await _LIVE_USER_ID.scalar(session, {"clerk_user_id": clerk_user_id})


# --- writing -----------------------------------------------------------------------------------


def _field_tables() -> dict[str, sa.Table]:
    """Writable field -> its table, from the models' columns (a new column is routed at once)."""
    routes: dict[str, sa.Table] = {}
    for table in PROFILE_TABLES:
        for column in table.c:
            if column.name in RESERVED_FIELDS:
                continue
            if column.name in routes:
                raise RuntimeError(
                    f"profile field {column.name!r} is in both {routes[column.name].name}"
                    f" and {table.name}: update_user_profile cannot route it"
                )
            routes[column.name] = table
    return routes


FIELD_TABLES: dict[str, sa.Table] = _field_tables()


def route_fields(fields: Mapping[str, Any], *, service: str | None = None) -> dict[str, dict]:
    """Split ``fields`` by table name, rejecting unknown, non-nullable-None and non-owned fields."""
    routed: dict[str, dict[str, Any]] = {}
    for name, value in fields.items():
        table = FIELD_TABLES.get(name)
        if table is None:
            raise UnknownProfileField(name)
        if service is not None and OWNERSHIP[table.name] != service:
            raise FieldNotOwned(name, table.name, service)
        if value is None and not table.c[name].nullable:
            raise InvalidProfileValue(name, "cannot be cleared (the column is NOT NULL)")
        routed.setdefault(table.name, {})[name] = value
    return routed


async def update_user_profile(
    session: AsyncSession, clerk_user_id: str, *, service: str | None = None, **fields: Any
) -> UserProfile:
    """Write ``fields`` to their tables in the caller's transaction and return the new profile.

    Child rows are upserted; ``None`` clears a nullable column; omitted fields are untouched.
    With ``service``, only that service's tables may be written (``OWNERSHIP``).
    """
    routed = route_fields(fields, service=service)

    user_values = routed.get(users.name)
    if user_values:
        stmt = (
            sa.update(users)
            .where(users.c.user_id == clerk_user_id)
            .values(**user_values, updated_at=sa.func.now())
            .returning(users.c.id, users.c.created_at)
        )
    else:
        stmt = sa.select(users.c.id, users.c.created_at).where(users.c.user_id == clerk_user_id)
    found = (await session.execute(stmt)).first()
    if found is None:
        raise UserNotFound(clerk_user_id)
    user_pk, created_at = found

    for table in CHILD_TABLES:
        values = routed.get(table.name)
        if not values:
            continue
        inserted = dict(values)
        if table is system_data:
            # A row created late still records when the user signed up, not when it was written.
            inserted.setdefault("signup_timestamp", created_at)
        upsert = pg_insert(table).values(user_id=user_pk, **inserted)
        upsert = upsert.on_conflict_do_update(
            index_elements=[table.c.user_id],
            set_={**{name: upsert.excluded[name] for name in values}, "updated_at": sa.func.now()},
        )
        await session.execute(upsert)

    profile = await get_user_profile(session, clerk_user_id)
    assert profile is not None  # the row was found above, in this transaction
    return profile
