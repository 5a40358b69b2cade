"""Stripe webhooks: verified, idempotent by event id with a processing lease, out-of-order safe.

1. ``stripe.Webhook.construct_event`` checks the signature (300 s tolerance) → 400 otherwise.
2. **Claim** (own committed transaction): insert the ``webhook_events`` row (source ``stripe``)
   as ``processing`` with ``locked_until = now + LEASE``; an existing row is re-claimed only
   when it ``failed`` or its lease ran out (a crashed attempt) — one statement, so concurrent
   duplicates cannot both win. Completed → 200 duplicate; another live attempt → 409 (Stripe
   retries later, so nothing is lost if that attempt dies).
3. **Process** in one transaction with marking the row ``completed``, and only while our lease
   is still on the row. A failure marks it ``failed`` and answers 500 so Stripe retries.
"""

import logging
from datetime import UTC, datetime
from typing import Any

import orjson
import stripe
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.errors import InvalidPayload, InvalidSignature, ScoutError, UserNotFound
from shared.models.enums import SubscriptionStatus
from shared.settings import Settings

from .. import stripe_api
from ..errors import WebhookFailed, WebhookInProgress
from ..repository import AccountRepository, SubscriptionRepository, WebhookRepository
from . import subscriptions

log = logging.getLogger("scout.billing.webhooks")

LEASE_SECONDS = 60
TOLERANCE_SECONDS = 300
SUBSCRIPTION_EVENTS = {
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "customer.subscription.trial_will_end",
}
HANDLED = SUBSCRIPTION_EVENTS | {
    "checkout.session.completed",
    "invoice.payment_succeeded",
    "invoice.payment_failed",
}


def verify(payload: bytes, signature: str | None, secret: str) -> dict[str, Any]:
    if not signature:
        raise InvalidSignature("The Stripe-Signature header is missing.")
    try:
        stripe.Webhook.construct_event(payload, signature, secret, tolerance=TOLERANCE_SECONDS)
    except stripe.SignatureVerificationError as exc:
        raise InvalidSignature(f"The Stripe signature does not verify: {exc}") from None
    except ValueError:
        raise InvalidPayload("The webhook body is not JSON.") from None
    event = orjson.loads(payload)
    if not isinstance(event, dict) or not event.get("id") or not event.get("type"):
        raise InvalidPayload("The webhook body is not a Stripe event.")
    return event


async def handle(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, event: dict[str, Any]
) -> dict[str, Any]:
    """Claim, process and complete one verified event; returns the response body."""
    async with sessions() as session, session.begin():
        repo = WebhookRepository(session)
        claimed = await repo.claim(
            event["id"],
            str(event["type"]),
            subscriptions.ts(event.get("created")),
            LEASE_SECONDS,
            event,
            {"received_at": datetime.now(UTC).isoformat()},
        )
        if claimed is None:
            status = await repo.status(event["id"])
    if claimed is None:
        if status == "completed":
            return {"received": True, "duplicate": True, "outcome": "already_completed"}
        raise WebhookInProgress()
    row_id, lease = claimed
    try:
        async with sessions() as session, session.begin():
            repo = WebhookRepository(session)
            if not await repo.still_ours(row_id, lease):  # another attempt took over
                raise WebhookInProgress("This event was taken over by another attempt.")
            outcome = await dispatch(session, settings, event)
            await repo.complete(row_id, outcome)
    except WebhookInProgress:
        raise
    except Exception as exc:
        log.warning("billing.webhook_failed", extra={"event": event["id"], "error": repr(exc)})
        async with sessions() as session, session.begin():
            await WebhookRepository(session).fail(row_id, lease, repr(exc))
        detail = exc.detail if isinstance(exc, ScoutError) else type(exc).__name__
        raise WebhookFailed(f"The event could not be processed: {detail}") from exc
    return {"received": True, "duplicate": False, "outcome": outcome}


async def dispatch(session: AsyncSession, settings: Settings, event: dict[str, Any]) -> str:
    type_ = event["type"]
    obj = (event.get("data") or {}).get("object") or {}
    state_at = subscriptions.ts(event.get("created")) or datetime.now(UTC)
    if type_ in SUBSCRIPTION_EVENTS:
        return (await subscriptions.apply_subscription(session, obj, state_at=state_at)).outcome
    if type_ == "checkout.session.completed":
        return await _checkout_completed(session, settings, obj, state_at)
    if type_ in ("invoice.payment_succeeded", "invoice.payment_failed"):
        return await _invoice(session, settings, type_, obj, state_at)
    return "unhandled"


async def _checkout_completed(
    session: AsyncSession, settings: Settings, obj: dict, state_at: datetime
) -> str:
    if obj.get("mode") != "subscription":
        return "ignored"
    clerk = obj.get("client_reference_id") or (obj.get("metadata") or {}).get("user_id")
    user_id = await subscriptions.find_user(
        session, customer=obj.get("customer"), clerk_ids=[clerk]
    )
    if user_id is None:
        raise UserNotFound(f"No user for checkout session {obj.get('id')}.")
    if obj.get("customer"):
        await AccountRepository(session).set_customer(user_id, obj["customer"])
    sub_id = obj.get("subscription")
    if isinstance(sub_id, dict):
        sub_id = sub_id.get("id")
    if not sub_id or not stripe_api.configured(settings):
        return "linked"  # the customer.subscription.* events carry the state
    sub = await stripe_api.client(settings).v1.subscriptions.retrieve_async(sub_id)
    return (
        await subscriptions.apply_subscription(session, sub, state_at=state_at, user_id=user_id)
    ).outcome


async def _invoice(
    session: AsyncSession, settings: Settings, type_: str, obj: dict, state_at: datetime
) -> str:
    sub_id = obj.get("subscription") or (
        ((obj.get("parent") or {}).get("subscription_details") or {}).get("subscription")
    )
    user_id = await subscriptions.find_user(session, customer=obj.get("customer"), clerk_ids=[])
    if user_id is None:
        raise UserNotFound(f"No user for Stripe customer {obj.get('customer')}.")
    if sub_id and stripe_api.configured(settings):
        sub = await stripe_api.client(settings).v1.subscriptions.retrieve_async(sub_id)
        return (
            await subscriptions.apply_subscription(session, sub, state_at=state_at, user_id=user_id)
        ).outcome
    if type_ == "invoice.payment_failed":
        status = SubscriptionStatus.past_due
    else:
        current = await SubscriptionRepository(session).status_of(user_id)
        if current not in (SubscriptionStatus.past_due, SubscriptionStatus.unpaid):
            return "unchanged"
        status = SubscriptionStatus.active
    return (await subscriptions.set_status(session, user_id, status, state_at=state_at)).outcome
