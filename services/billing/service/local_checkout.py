"""Billing's own checkout page (development without Stripe): read a session, complete it.

Completing a session sends the webhooks Stripe would send (``local_stripe``) to billing's
``POST /webhooks/stripe`` through the HTTP client it is given, so the plan changes through the
same verification, claiming and subscription code as a real payment.
"""

from collections.abc import Mapping
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from shared.settings import Settings

from .. import local_stripe
from ..errors import CheckoutSessionNotFound, LocalPaymentRejected
from ..repository import AccountRepository


async def open_session(
    session: AsyncSession, settings: Settings, session_id: str
) -> tuple[local_stripe.Purchase, Mapping[str, Any]]:
    """The purchase a local session id carries and its plan, or 404 for a session not ours."""
    purchase = local_stripe.read_session(settings.stripe_webhook_secret, session_id)
    if purchase is None:
        raise CheckoutSessionNotFound()
    plan = await AccountRepository(session).plan(purchase.plan)
    if plan is None:
        raise CheckoutSessionNotFound(f"The plan {purchase.plan!r} is no longer on offer.")
    return purchase, plan


def price_of(plan: Mapping[str, Any], purchase: local_stripe.Purchase) -> int:
    """The plan's price in cents for the purchase's interval."""
    key = "monthly_price" if purchase.interval == "monthly" else "yearly_price"
    return int(plan[key])


async def complete(
    webhooks: httpx.AsyncClient,
    settings: Settings,
    session_id: str,
    purchase: local_stripe.Purchase,
    plan: Mapping[str, Any],
) -> str:
    """Pay the session: its events, signed, to ``/webhooks/stripe``; the new status.

    A trial starts the subscription ``trialing``, otherwise ``active``. Completing a session
    again delivers the same event ids, which billing answers as duplicates.
    """
    status = "trialing" if purchase.trial_days else "active"
    events = local_stripe.purchase_events(
        purchase, session_id=session_id, status=status, unit_amount=price_of(plan, purchase)
    )
    answers = await local_stripe.deliver(webhooks, events, settings.stripe_webhook_secret)
    last = answers[-1]
    if last.status_code != 200:
        try:
            reason = last.json().get("detail", last.text)
        except ValueError:
            reason = last.text
        raise LocalPaymentRejected(
            f"POST /webhooks/stripe answered {last.status_code} to"
            f" {events[len(answers) - 1]['type']}: {reason}"
        )
    return status
