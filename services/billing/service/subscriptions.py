"""Subscription state from Stripe objects: webhooks, reconciliation and trial expiry share it.

Out-of-order safety: ``user_subscriptions.stripe_state_at`` holds the Stripe ``created`` time
of the newest event applied; an event older than that is ignored (an equal one is applied, so
replays are harmless). Reconciliation applies what Stripe says *now*, stamped with now.
"""

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from shared.errors import UserNotFound
from shared.events.outbox import record_event
from shared.models.enums import SubscriptionStatus
from shared.queries.users import get_user_by_stripe_customer_id, live_user_id
from shared.settings import Settings

from .. import stripe_api
from ..errors import UnknownPrice
from ..repository import SubscriptionRepository

log = logging.getLogger("scout.billing.subscriptions")

_STATUS = {
    "trialing": SubscriptionStatus.trialing,
    "active": SubscriptionStatus.active,
    "past_due": SubscriptionStatus.past_due,
    "unpaid": SubscriptionStatus.unpaid,
    "paused": SubscriptionStatus.past_due,
    "canceled": SubscriptionStatus.canceled,
    "incomplete_expired": SubscriptionStatus.canceled,
    "incomplete": SubscriptionStatus.none,
}
_LIVE = {"trialing", "active", "past_due", "unpaid", "paused", "incomplete"}


@dataclass
class Applied:
    user_id: uuid.UUID
    outcome: str  # "applied" | "stale" | "unchanged" | "ignored"


def ts(value: int | None) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if value else None


def _get(obj: Any, key: str, default: Any = None) -> Any:
    try:
        value = obj[key]
    except (KeyError, TypeError, IndexError):
        return default
    return default if value is None else value


async def find_user(
    session: AsyncSession, *, customer: str | None, clerk_ids: list[str | None]
) -> uuid.UUID | None:
    """By stored ``stripe_customer_id``, else by Clerk id (``metadata.user_id`` / reference)."""
    if customer:
        profile = await get_user_by_stripe_customer_id(session, customer)
        if profile is not None:
            return profile.id
    for clerk in clerk_ids:
        if clerk:
            found = await live_user_id(session, clerk)
            if found:
                return found
    return None


async def apply_subscription(
    session: AsyncSession,
    sub: Any,
    *,
    state_at: datetime,
    sync: str = "webhook",
    clerk_id: str | None = None,
    user_id: uuid.UUID | None = None,
) -> Applied:
    """Make the user's subscription rows match Stripe subscription ``sub`` (guarded by time)."""
    customer = _get(sub, "customer")
    metadata = _get(sub, "metadata", {})
    if user_id is None:
        user_id = await find_user(
            session, customer=customer, clerk_ids=[_get(metadata, "user_id"), clerk_id]
        )
    if user_id is None:
        raise UserNotFound(f"No user for Stripe customer {customer}.")
    items = _get(_get(sub, "items", {}), "data", [])
    item = items[0] if items else {}
    price = _get(_get(item, "price", {}), "id")
    mapped = stripe_api.plan_for_price(price)
    if mapped is None:
        raise UnknownPrice(f"Price {price!r} maps to no plan.")
    plan, interval = mapped
    recurring = _get(_get(_get(item, "price", {}), "recurring", {}), "interval")
    interval = stripe_api.FROM_STRIPE_INTERVAL.get(recurring, interval)
    status = _STATUS.get(_get(sub, "status"), SubscriptionStatus.none)

    row = await _locked_state(session, user_id, state_at)
    if row is None:
        return Applied(user_id, "stale")
    stored_sub = row["stripe_subscription_id"]
    if stored_sub and stored_sub != sub["id"] and _get(sub, "status") not in _LIVE:
        # an old subscription ending must not end the one the user has now
        return Applied(user_id, "ignored")

    now = datetime.now(UTC)
    previous_status = row["subscription_status"]
    cancel_at = ts(_get(sub, "cancel_at"))
    if status == SubscriptionStatus.canceled:
        cancel_at = ts(_get(sub, "canceled_at")) or ts(_get(sub, "ended_at")) or now
    values = {
        "plan": plan,
        "status": status.value,
        "trial_start": ts(_get(sub, "trial_start")),
        "trial_end": ts(_get(sub, "trial_end")),
        "converted": now
        if previous_status == SubscriptionStatus.trialing and status == SubscriptionStatus.active
        else None,
        "interval": interval.value,
        "period_end": ts(_get(item, "current_period_end") or _get(sub, "current_period_end")),
        "cancel": cancel_at,
        "sync": sync,
        "state_at": state_at,
    }
    repo = SubscriptionRepository(session)
    await repo.apply(user_id, values)
    await repo.link(user_id, customer, sub["id"])
    changed = row["current_plan"] != plan or previous_status != status.value
    if changed:
        await _emit(
            session,
            "billing.subscription.changed",
            user_id,
            {
                "user_id": user_id,
                "plan": plan,
                "previous_plan": row["current_plan"],
                "status": status.value,
                "previous_status": previous_status,
                "billing_interval": values["interval"],
                "trial_start_date": values["trial_start"],
                "trial_end_date": values["trial_end"],
                "current_period_end": values["period_end"],
                "cancel_at": cancel_at,
            },
        )
    if (
        status == SubscriptionStatus.trialing
        and values["trial_start"]
        and values["trial_end"]
        and (previous_status != SubscriptionStatus.trialing or row["trial_end_date"] is None)
    ):
        await _emit(
            session,
            "billing.trial.started",
            user_id,
            {
                "user_id": user_id,
                "plan": plan,
                "trial_start_date": values["trial_start"],
                "trial_end_date": values["trial_end"],
            },
        )
    if values["converted"]:
        await _emit(
            session,
            "billing.trial.converted",
            user_id,
            {"user_id": user_id, "plan": plan, "converted_at": now},
        )
    return Applied(user_id, "applied" if changed else "unchanged")


async def _locked_state(
    session: AsyncSession, user_id: uuid.UUID, state_at: datetime
) -> Mapping[str, Any] | None:
    """The user's subscription state, row-locked (subscription and billing rows, always in that
    order); None when the event at ``state_at`` is older than the state held (stale)."""
    row = await SubscriptionRepository(session).lock_state(user_id)
    if row is None:
        raise UserNotFound(f"User {user_id} has no billing rows yet.")
    if row["stripe_state_at"] is not None and state_at < row["stripe_state_at"]:
        return None
    return row


async def set_status(
    session: AsyncSession, user_id: uuid.UUID, status: SubscriptionStatus, *, state_at: datetime
) -> Applied:
    """A status-only change (invoice events when Stripe cannot be asked), time-guarded."""
    row = await _locked_state(session, user_id, state_at)
    if row is None:
        return Applied(user_id, "stale")
    if row["subscription_status"] == status.value:
        return Applied(user_id, "unchanged")
    await SubscriptionRepository(session).set_status(user_id, status.value, state_at)
    await _emit(
        session,
        "billing.subscription.changed",
        user_id,
        {
            "user_id": user_id,
            "plan": row["current_plan"],
            "previous_plan": row["current_plan"],
            "status": status.value,
            "previous_status": row["subscription_status"],
        },
    )
    return Applied(user_id, "applied")


async def _emit(session: AsyncSession, type: str, user_id: uuid.UUID, data: dict) -> None:
    await record_event(
        session,
        service="billing",
        type=type,
        aggregate_type="subscription",
        aggregate_id=user_id,
        data=data,
        user_id=user_id,
    )


def pick_subscription(subs: list[Any]) -> Any | None:
    """Stripe's current subscription of a customer: active > trialing > past_due > newest."""
    rank = {"active": 0, "trialing": 1, "past_due": 2}
    if not subs:
        return None
    return min(subs, key=lambda s: (rank.get(_get(s, "status"), 3), -int(_get(s, "created", 0))))


async def reconcile(session: AsyncSession, settings: Settings, *, limit: int = 200) -> dict:
    """Make up to ``limit`` users with a Stripe customer match what Stripe says now."""
    if not stripe_api.configured(settings):
        return {"skipped": "stripe not configured"}
    client = stripe_api.client(settings)
    rows = await SubscriptionRepository(session).to_reconcile(limit)
    fixed = checked = 0
    for user_id, customer in rows:
        listing = await client.v1.subscriptions.list_async(
            params={"customer": customer, "status": "all", "limit": 100}
        )
        sub = pick_subscription(list(listing.data))
        checked += 1
        if sub is None:
            continue
        try:
            result = await apply_subscription(
                session, sub, state_at=datetime.now(UTC), sync="reconciled", user_id=user_id
            )
        except UnknownPrice:
            log.warning("billing.reconcile_unknown_price", extra={"user_id": str(user_id)})
            continue
        fixed += result.outcome == "applied"
    return {"checked": checked, "fixed": fixed}


async def expire_trials(session: AsyncSession, settings: Settings, *, limit: int = 500) -> dict:
    """Ended trials: ask Stripe for the truth when possible, then announce each expiry once."""
    repo = SubscriptionRepository(session)
    ended = await repo.ended_trials(limit)
    refreshed = 0
    if ended and stripe_api.configured(settings):
        client = stripe_api.client(settings)
        for user_id, sub_id in ended:
            if not sub_id:
                continue
            sub = await client.v1.subscriptions.retrieve_async(sub_id)
            await apply_subscription(
                session, sub, state_at=datetime.now(UTC), sync="reconciled", user_id=user_id
            )
            refreshed += 1
    # Still trialing past the end (Stripe unreachable, or not configured): derived "expired".
    expired = await repo.lock_expired_unannounced(limit)
    for user_id, plan, trial_end in expired:
        await _emit(
            session,
            "billing.trial.expired",
            user_id,
            {"user_id": user_id, "plan": plan, "trial_end_date": trial_end},
        )
    return {"refreshed": refreshed, "expired": len(expired)}
