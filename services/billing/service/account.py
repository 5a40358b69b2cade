"""A user's billing account: plans, the billing status, Stripe checkout, the intended plan."""

import math
import os
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import stripe
from sqlalchemy.ext.asyncio import AsyncSession

from shared.errors import UserNotFound
from shared.models.enums import SubscriptionStatus, TrialStatus
from shared.queries.users import derive_trial_status
from shared.settings import Settings

from .. import local_stripe, stripe_api
from ..errors import BillingProviderUnavailable, UnknownPlan
from ..repository import AccountRepository
from ..repository import usage_history as history_rows
from ..schemas import (
    BillingStatusOut,
    CheckoutIn,
    CheckoutOut,
    UsageHistoryOut,
    UsageMonth,
    UsageOut,
)

TRIAL_DAYS = 7
# Statuses with a Stripe subscription that is still running: a new plan changes it in place.
LIVE = ("active", "trialing", "past_due", "unpaid")


def trial_days_left(trial_status: TrialStatus, trial_end: datetime | None, now: datetime) -> int:
    """Whole days left in an active trial, rounded up (0 otherwise)."""
    if trial_status != TrialStatus.active or trial_end is None:
        return 0
    return max(0, math.ceil((trial_end - now).total_seconds() / 86400))


def access_allowed(status: str, trial_status: TrialStatus, onboarding_step: str | None) -> bool:
    """(active OR trial active) AND onboarding completed."""
    paying = status == SubscriptionStatus.active or trial_status == TrialStatus.active
    return paying and onboarding_step == "completed"


async def plans(session: AsyncSession) -> list[Mapping[str, Any]]:
    """Active plans in display order (public)."""
    return await AccountRepository(session).plans()


async def billing_status(session: AsyncSession, user_id: uuid.UUID) -> BillingStatusOut:
    """Plan, subscription and trial status, access and usage of the caller (one statement)."""
    found = await AccountRepository(session).status(user_id)
    if found is None:
        raise UserNotFound("No billing account for this user yet.")
    user, counts = found
    now = datetime.now(UTC)
    trial = derive_trial_status(user["subscription_status"], user["trial_end_date"], now)
    return BillingStatusOut(
        plan=user["current_plan"],
        subscription_status=user["subscription_status"],
        trial_status=trial,
        trial_ends_at=user["trial_end_date"],
        trial_days_left=trial_days_left(trial, user["trial_end_date"], now),
        access_allowed=access_allowed(user["subscription_status"], trial, user["onboarding_step"]),
        billing_interval=user["billing_interval"],
        current_period_end=user["current_period_end"],
        usage={
            r: UsageOut(used=c.used, limit=c.limit, reserved=c.reserved) for r, c in counts.items()
        },
    )


async def usage_history(session: AsyncSession, user_id: uuid.UUID, months: int) -> UsageHistoryOut:
    """Settled usage per resource for each of the last ``months`` calendar months (UTC)."""
    rows = await history_rows(session, user_id, months)
    return UsageHistoryOut(months=[UsageMonth(**row) for row in rows])


def _first_subscription(user: Mapping[str, Any]) -> bool:
    """Only a user who never subscribed nor trialled gets the trial."""
    return (
        not user["stripe_subscription_id"]
        and user["trial_start_date"] is None
        and user["subscription_status"] == SubscriptionStatus.none
    )


async def checkout(
    session: AsyncSession,
    settings: Settings,
    user_id: uuid.UUID,
    clerk_user_id: str,
    body: CheckoutIn,
    *,
    local_page: Callable[[str], str],
    operation: uuid.UUID | None = None,
) -> CheckoutOut:
    """A Stripe Checkout session (7-day trial for a first subscription only), or an in-place
    plan change when the user already has a live subscription. With local billing
    (development, no Stripe key) the session is billing's own page, at ``local_page(id)``.

    ``operation`` keys the Stripe calls (Stripe's own ``Idempotency-Key``), so a retried
    operation gets the customer and session the first attempt created instead of new ones."""

    def once(step: str) -> dict[str, Any]:
        return {"idempotency_key": f"scout-{operation}-{step}"} if operation else {}

    repo = AccountRepository(session)
    # The plan is checked before the provider: a plan not on offer is the caller's mistake.
    if not await repo.plan_exists(body.plan):
        raise UnknownPlan(f"The plan {body.plan.value!r} is not on offer.")
    if settings.local_billing:
        return await _local_checkout(repo, settings, user_id, clerk_user_id, body, local_page)
    client = stripe_api.client(settings)  # 503 billing_provider_unavailable when unset
    # One checkout at a time per user (the billing row lock): the customer is created once.
    user = await repo.lock_checkout(user_id)
    if user is None:
        raise UserNotFound("No billing account for this user yet.")
    price = stripe_api.price_id(body.plan.value, body.interval.value)
    metadata = {"user_id": clerk_user_id, "plan": body.plan.value}
    try:
        if user["stripe_subscription_id"] and user["subscription_status"] in LIVE:
            sub = await client.v1.subscriptions.retrieve_async(user["stripe_subscription_id"])
            item = sub["items"]["data"][0]
            await client.v1.subscriptions.update_async(
                sub["id"],
                params={
                    "items": [{"id": item["id"], "price": price}],
                    "proration_behavior": "create_prorations",
                    "metadata": metadata,
                },
                options=once("upgrade"),
            )
            await repo.set_intended_plan(user_id, body.plan.value)
            return CheckoutOut(mode="upgrade", subscription_id=sub["id"], trial_days=0)
        customer = user["stripe_customer_id"]
        if not customer:
            created = await client.v1.customers.create_async(
                params={"email": user["email"], "metadata": {"user_id": clerk_user_id}},
                options=once("customer"),
            )
            customer = created["id"]
            await repo.set_customer(user_id, customer)
        first = _first_subscription(user)
        subscription_data: dict[str, Any] = {
            "metadata": {**metadata, "interval": body.interval.value}
        }
        if first:
            subscription_data["trial_period_days"] = TRIAL_DAYS
        created_session = await client.v1.checkout.sessions.create_async(
            params={
                "mode": "subscription",
                "customer": customer,
                "client_reference_id": clerk_user_id,
                "line_items": [{"price": price, "quantity": 1}],
                "payment_method_collection": "always",
                "allow_promotion_codes": True,
                "subscription_data": subscription_data,
                "success_url": os.environ.get(
                    "BILLING_SUCCESS_URL",
                    "http://localhost:3000/onboarding/success?session_id={CHECKOUT_SESSION_ID}",
                ),
                "cancel_url": os.environ.get(
                    "BILLING_CANCEL_URL", "http://localhost:3000/dashboard"
                ),
            },
            options=once("session"),
        )
    except stripe.StripeError as exc:
        raise BillingProviderUnavailable(f"The billing provider failed: {exc}") from exc
    await repo.set_intended_plan(user_id, body.plan.value)
    return CheckoutOut(
        mode="checkout",
        checkout_url=created_session["url"],
        session_id=created_session["id"],
        trial_days=TRIAL_DAYS if first else 0,
    )


async def _local_checkout(
    repo: AccountRepository,
    settings: Settings,
    user_id: uuid.UUID,
    clerk_user_id: str,
    body: CheckoutIn,
    local_page: Callable[[str], str],
) -> CheckoutOut:
    """Billing's own checkout session: the same trial rule, the user's customer if they have one."""
    user = await repo.lock_checkout(user_id)
    if user is None:
        raise UserNotFound("No billing account for this user yet.")
    trial_days = TRIAL_DAYS if _first_subscription(user) else 0
    purchase = local_stripe.Purchase(
        clerk_user_id=clerk_user_id,
        plan=body.plan.value,
        interval=body.interval,
        trial_days=trial_days,
        customer=user["stripe_customer_id"] or local_stripe.customer_id(clerk_user_id),
        expires_at=int(time.time()) + local_stripe.SESSION_TTL_SECONDS,
    )
    session_id = local_stripe.new_session(settings.stripe_webhook_secret, purchase)
    await repo.set_intended_plan(user_id, body.plan.value)
    return CheckoutOut(
        mode="checkout",
        checkout_url=local_page(session_id),
        session_id=session_id,
        trial_days=trial_days,
    )


async def intend_plan(session: AsyncSession, user_id: uuid.UUID, plan: str) -> None:
    """The user chose ``plan`` during onboarding (an unknown plan is ignored)."""
    await AccountRepository(session).set_intended_plan(user_id, plan)
