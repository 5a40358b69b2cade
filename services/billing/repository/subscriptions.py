"""Every SQL statement about subscription state (``user_subscriptions`` with the Stripe ids of
``user_billing``): the time-guarded writes, and the scans of reconciliation and trial expiry."""

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession

# Subscription and billing rows, always locked in that order (so the webhook, reconciliation
# and trial expiry never deadlock each other on one user).
_LOCK_STATE = sa.text(
    "SELECT s.current_plan, s.subscription_status, s.stripe_state_at,"
    " s.trial_start_date, s.trial_end_date, b.stripe_subscription_id"
    " FROM user_subscriptions s JOIN user_billing b ON b.user_id = s.user_id"
    " WHERE s.user_id = :uid FOR UPDATE OF s, b"
)

_APPLY = sa.text(
    "UPDATE user_subscriptions SET current_plan = :plan, intended_plan = :plan,"
    " subscription_status = :status, trial_start_date = :trial_start,"
    " trial_end_date = :trial_end,"
    " trial_conversion_date = coalesce(:converted, trial_conversion_date),"
    " billing_interval = :interval, current_period_end = :period_end,"
    " subscription_renewal_date = :period_end, subscription_cancel_date = :cancel,"
    " billing_sync_status = :sync,"
    " stripe_state_at = greatest(coalesce(stripe_state_at, :state_at), :state_at)"
    " WHERE user_id = :uid"
)

_LINK_SUBSCRIPTION = sa.text(
    "UPDATE user_billing SET stripe_customer_id = coalesce(:c, stripe_customer_id),"
    " stripe_subscription_id = :s WHERE user_id = :uid"
)

_SET_STATUS = sa.text(
    "UPDATE user_subscriptions SET subscription_status = :s, billing_sync_status = 'webhook',"
    " stripe_state_at = :t WHERE user_id = :uid"
)

_STATUS_OF = sa.text("SELECT subscription_status FROM user_subscriptions WHERE user_id = :u")

# Least recently changed first, so every customer is looked at in turn.
_TO_RECONCILE = sa.text(
    "SELECT b.user_id, b.stripe_customer_id FROM user_billing b"
    " JOIN user_subscriptions s ON s.user_id = b.user_id"
    " WHERE b.stripe_customer_id IS NOT NULL"
    " ORDER BY s.updated_at LIMIT :limit"
)

_ENDED_TRIALS = sa.text(
    "SELECT s.user_id, b.stripe_subscription_id FROM user_subscriptions s"
    " JOIN user_billing b ON b.user_id = s.user_id"
    " WHERE s.subscription_status = 'trialing' AND s.trial_end_date < now()"
    " ORDER BY s.trial_end_date LIMIT :limit"
)

# Still trialing past the end, and not yet announced for that trial end.
_EXPIRED_UNANNOUNCED = sa.text(
    "SELECT s.user_id, s.current_plan, s.trial_end_date FROM user_subscriptions s"
    " WHERE s.subscription_status = 'trialing' AND s.trial_end_date < now()"
    " AND NOT EXISTS (SELECT 1 FROM events e WHERE e.type = 'billing.trial.expired'"
    " AND e.aggregate_type = 'subscription' AND e.aggregate_id = s.user_id::text"
    " AND e.data->>'trial_end_date' IS NOT NULL"
    " AND (e.data->>'trial_end_date')::timestamptz = s.trial_end_date)"
    " LIMIT :limit FOR UPDATE OF s SKIP LOCKED"
)


class SubscriptionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def lock_state(self, user_id: uuid.UUID) -> Mapping[str, Any] | None:
        """The user's subscription state with both rows locked; None without billing rows."""
        return (await self.session.execute(_LOCK_STATE, {"uid": user_id})).mappings().first()

    async def apply(self, user_id: uuid.UUID, values: Mapping[str, Any]) -> None:
        """Write a Stripe subscription's state (``values``: plan, status, trial, period, cancel,
        sync, state_at); ``stripe_state_at`` only moves forward."""
        await self.session.execute(_APPLY, {**values, "uid": user_id})

    async def link(self, user_id: uuid.UUID, customer: str | None, subscription: str) -> None:
        """Record the Stripe subscription id (and the customer, when Stripe named one)."""
        params = {"c": customer, "s": subscription, "uid": user_id}
        await self.session.execute(_LINK_SUBSCRIPTION, params)

    async def set_status(self, user_id: uuid.UUID, status: str, state_at: datetime) -> None:
        params = {"s": status, "t": state_at, "uid": user_id}
        await self.session.execute(_SET_STATUS, params)

    async def status_of(self, user_id: uuid.UUID) -> str | None:
        return await self.session.scalar(_STATUS_OF, {"u": user_id})

    async def to_reconcile(self, limit: int) -> list[Row]:
        """(user id, Stripe customer) of up to ``limit`` users, least recently changed first."""
        return list((await self.session.execute(_TO_RECONCILE, {"limit": limit})).all())

    async def ended_trials(self, limit: int) -> list[Row]:
        """(user id, Stripe subscription id) of trials past their end still marked trialing."""
        return list((await self.session.execute(_ENDED_TRIALS, {"limit": limit})).all())

    async def lock_expired_unannounced(self, limit: int) -> list[Row]:
        """(user id, plan, trial end) of ended trials not yet announced, rows locked (others'
        locked rows skipped)."""
        return list((await self.session.execute(_EXPIRED_UNANNOUNCED, {"limit": limit})).all())
