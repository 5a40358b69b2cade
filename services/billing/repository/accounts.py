"""Every SQL statement about a user's billing account: plans, the billing status, checkout
state, the Stripe customer, the intended plan, and the rows provisioned and purged per user."""

import uuid
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from .usage import USAGE_COLUMNS, Usage, usage_from

# The 1:1 rows billing keeps per user, in the order they are written.
ACCOUNT_TABLES = ("user_subscriptions", "user_billing", "user_usage")

_PLAN_COLUMNS = (
    "plan_key, plan_name AS display_name, description,"
    " price_monthly AS monthly_price, price_yearly AS yearly_price, campaigns_limit,"
    " creators_limit, enrichments_limit, features, is_legacy"
)
_PLANS = sa.text(
    f"SELECT {_PLAN_COLUMNS} FROM subscription_plans WHERE is_active"
    " ORDER BY display_order, plan_key"
)
_PLAN = sa.text(f"SELECT {_PLAN_COLUMNS} FROM subscription_plans WHERE plan_key = :p AND is_active")

_PLAN_EXISTS = sa.text("SELECT 1 FROM subscription_plans WHERE plan_key = :p AND is_active")

# The subscription, onboarding step and every usage counter of one user in ONE statement; no
# row unless the user has both subscription and billing rows (billing provisions them together).
_STATUS = sa.text(
    "SELECT s.current_plan, s.subscription_status, s.trial_end_date, s.billing_interval,"
    f" s.current_period_end, usr.onboarding_step, u.id IS NOT NULL AS has_usage, {USAGE_COLUMNS}"
    " FROM user_subscriptions s JOIN user_billing b ON b.user_id = s.user_id"
    " JOIN users usr ON usr.id = s.user_id"
    " LEFT JOIN user_usage u ON u.user_id = s.user_id"
    " LEFT JOIN subscription_plans p ON p.plan_key = s.current_plan"
    " WHERE s.user_id = :uid"
)

# One checkout at a time per user (the Stripe customer is created once): the billing row lock.
_LOCK_CHECKOUT = sa.text(
    "SELECT u.email, s.current_plan, s.subscription_status, s.trial_start_date,"
    " b.stripe_customer_id, b.stripe_subscription_id"
    " FROM user_billing b JOIN user_subscriptions s ON s.user_id = b.user_id"
    " JOIN users u ON u.id = b.user_id"
    " WHERE b.user_id = :u FOR UPDATE OF b"
)

_SET_CUSTOMER = sa.text(
    "UPDATE user_billing SET stripe_customer_id = :c"
    " WHERE user_id = :u AND stripe_customer_id IS DISTINCT FROM :c"
)

_SET_INTENDED_PLAN = sa.text(
    "UPDATE user_subscriptions SET intended_plan = :p WHERE user_id = :u"
    " AND EXISTS (SELECT 1 FROM subscription_plans WHERE plan_key = :p)"
)

# The user must still exist; KEY SHARE keeps it from being deleted until this commits.
_LOCK_USER = sa.text("SELECT 1 FROM users WHERE id = :uid FOR KEY SHARE")

_PROVISION = {
    table: sa.text(
        f"INSERT INTO {table} (id, user_id) VALUES (:id, :uid) ON CONFLICT (user_id) DO NOTHING"
    )
    for table in ACCOUNT_TABLES
}

_LOCK_SUBSCRIPTION_ID = sa.text(
    "SELECT stripe_subscription_id FROM user_billing WHERE user_id = :uid FOR UPDATE"
)

_PURGE = {
    table: sa.text(f"DELETE FROM {table} WHERE user_id = :uid")
    for table in (*ACCOUNT_TABLES, "usage_reservations", "billing_usage_months")
}


class AccountRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def plans(self) -> list[Mapping[str, Any]]:
        """Active plans in display order."""
        return list((await self.session.execute(_PLANS)).mappings())

    async def plan(self, plan: str) -> Mapping[str, Any] | None:
        """One plan on offer (the columns of :meth:`plans`), or None."""
        return (await self.session.execute(_PLAN, {"p": plan})).mappings().first()

    async def plan_exists(self, plan: str) -> bool:
        return bool(await self.session.scalar(_PLAN_EXISTS, {"p": plan}))

    async def status(self, user_id: uuid.UUID) -> tuple[Mapping[str, Any], dict[Any, Usage]] | None:
        """The user's subscription fields and usage (one statement), or None without rows."""
        row = (await self.session.execute(_STATUS, {"uid": user_id})).mappings().first()
        if row is None:
            return None
        return row, usage_from(row if row["has_usage"] else None)

    async def lock_checkout(self, user_id: uuid.UUID) -> Mapping[str, Any] | None:
        """Email, subscription and Stripe ids of the user, the billing row locked."""
        return (await self.session.execute(_LOCK_CHECKOUT, {"u": user_id})).mappings().first()

    async def set_customer(self, user_id: uuid.UUID, customer: str) -> None:
        await self.session.execute(_SET_CUSTOMER, {"c": customer, "u": user_id})

    async def set_intended_plan(self, user_id: uuid.UUID, plan: str) -> None:
        """Record the plan the user chose (ignored when no such plan exists)."""
        await self.session.execute(_SET_INTENDED_PLAN, {"p": plan, "u": user_id})

    async def provision(self, user_id: uuid.UUID) -> bool:
        """Create the subscription (no plan, status none), billing and usage rows; idempotent.
        False when the user no longer exists (deleted before the event arrived)."""
        if not await self.session.scalar(_LOCK_USER, {"uid": user_id}):
            return False
        for table in ACCOUNT_TABLES:
            await self.session.execute(_PROVISION[table], {"id": uuid.uuid4(), "uid": user_id})
        return True

    async def lock_subscription_id(self, user_id: uuid.UUID) -> str | None:
        """The user's Stripe subscription id, the billing row locked."""
        return await self.session.scalar(_LOCK_SUBSCRIPTION_ID, {"uid": user_id})

    async def purge(self, user_id: uuid.UUID) -> None:
        """Delete every billing row of the user (account rows, reservations, usage by month)."""
        for statement in _PURGE.values():
            await self.session.execute(statement, {"uid": user_id})
