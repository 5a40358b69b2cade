"""Stripe's side of a purchase, played locally: development without a Stripe key.

Billing sells plans itself when ``settings.local_billing`` (development, no ``STRIPE_SECRET_KEY``):
``POST /billing/checkout`` answers a ``checkout_url`` to billing's own payment page, and
completing it — or ``scout billing subscribe`` — sends the webhooks Stripe would send after a
paid checkout: ``checkout.session.completed`` and ``customer.subscription.created``, shaped as
Stripe shapes them, with the configured price ids, signed with ``STRIPE_WEBHOOK_SECRET`` and
posted to ``POST /webhooks/stripe``. So the plan changes through exactly the code real Stripe
drives; nothing here writes a row.

A local checkout session is stateless: its id carries the purchase (user, plan, interval, trial,
customer, expiry) and an HMAC of it under the webhook secret, so the page needs no table and a
forged or expired id is simply not found. Every id an event carries derives from the session
id, so completing the same session twice delivers the same events, which billing applies once.
"""

import base64
import hashlib
import hmac
import json
import time
from dataclasses import asdict, dataclass
from typing import Any

import httpx

from shared.models.enums import BillingInterval

from . import stripe_api

SESSION_PREFIX = "cs_local_"
SESSION_TTL_SECONDS = 24 * 3600  # Stripe's own checkout sessions expire after a day
PERIOD_DAYS = {BillingInterval.monthly: 30, BillingInterval.yearly: 365}


@dataclass(frozen=True)
class Purchase:
    """What a local checkout sells: ``plan`` billed ``interval`` to ``clerk_user_id``."""

    clerk_user_id: str
    plan: str
    interval: BillingInterval
    trial_days: int
    customer: str
    expires_at: int  # unix seconds


def customer_id(clerk_user_id: str) -> str:
    """The local Stripe customer of a user (stable, so every purchase of a user shares it)."""
    return "cus_local_" + hashlib.sha256(clerk_user_id.encode()).hexdigest()[:14]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _mac(secret: str, body: str) -> str:
    return _b64(hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest()[:18])


def new_session(secret: str, purchase: Purchase) -> str:
    """A session id that carries ``purchase`` and proves billing made it."""
    fields = asdict(purchase) | {"interval": purchase.interval.value}
    body = _b64(json.dumps(fields, separators=(",", ":")).encode())
    return f"{SESSION_PREFIX}{body}.{_mac(secret, body)}"


def read_session(secret: str, session_id: str, now: float | None = None) -> Purchase | None:
    """The purchase a session id carries; None when it is not one of ours or has expired."""
    if not session_id.startswith(SESSION_PREFIX) or len(session_id) > 2000:
        return None
    body, _, mac = session_id.removeprefix(SESSION_PREFIX).partition(".")
    if not hmac.compare_digest(mac.encode(), _mac(secret, body).encode()):
        return None
    try:
        fields = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        purchase = Purchase(**fields | {"interval": BillingInterval(fields["interval"])})
    except (ValueError, TypeError, KeyError):
        return None
    return purchase if purchase.expires_at > (now or time.time()) else None


def _digest(*parts: str) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:24]


def purchase_events(
    purchase: Purchase,
    *,
    session_id: str,
    status: str,
    unit_amount: int | None,
    now: int | None = None,
) -> list[dict[str, Any]]:
    """The events Stripe sends after a paid subscription checkout, oldest first.

    ``status`` is the new subscription's (``trialing`` with a trial, else ``active``).
    """
    t = int(now or time.time())
    sub_id = f"sub_local_{_digest(session_id, 'subscription')}"
    trial_end = t + purchase.trial_days * 86400 if status == "trialing" else None
    price = {
        "id": stripe_api.price_id(purchase.plan, purchase.interval.value),
        "object": "price",
        "active": True,
        "currency": "usd",
        "product": f"prod_local_{purchase.plan}",
        "recurring": {
            "interval": stripe_api.STRIPE_INTERVAL[purchase.interval],
            "interval_count": 1,
        },
        "type": "recurring",
        "unit_amount": unit_amount,
    }
    period_end = (trial_end or t) + PERIOD_DAYS[purchase.interval] * 86400
    metadata = {
        "user_id": purchase.clerk_user_id,
        "plan": purchase.plan,
        "interval": purchase.interval.value,
    }
    subscription = {
        "id": sub_id,
        "object": "subscription",
        "customer": purchase.customer,
        "status": status,
        "created": t,
        "start_date": t,
        "trial_start": t if trial_end else None,
        "trial_end": trial_end,
        "cancel_at": None,
        "cancel_at_period_end": False,
        "canceled_at": None,
        "ended_at": None,
        "livemode": False,
        "metadata": metadata,
        "items": {
            "object": "list",
            "data": [
                {
                    "id": f"si_local_{_digest(session_id, 'item')}",
                    "object": "subscription_item",
                    "current_period_start": t,
                    "current_period_end": period_end,
                    "price": price,
                    "quantity": 1,
                }
            ],
        },
    }
    checkout_session = {
        "id": session_id,
        "object": "checkout.session",
        "mode": "subscription",
        "status": "complete",
        "payment_status": "no_payment_required" if trial_end else "paid",
        "customer": purchase.customer,
        "client_reference_id": purchase.clerk_user_id,
        "subscription": sub_id,
        "amount_total": 0 if trial_end else unit_amount,
        "currency": "usd",
        "created": t,
        "livemode": False,
        "metadata": {},
    }
    return [
        _event(session_id, "checkout.session.completed", checkout_session, t),
        _event(session_id, "customer.subscription.created", subscription, t),
    ]


def _event(session_id: str, type_: str, obj: dict[str, Any], created: int) -> dict[str, Any]:
    return {
        "id": f"evt_local_{_digest(session_id, type_)}",
        "object": "event",
        "api_version": "2025-03-31.basil",
        "created": created,
        "type": type_,
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "data": {"object": obj},
    }


def signature(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """The ``Stripe-Signature`` header Stripe computes: HMAC-SHA256 of ``"<t>.<payload>"``."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


async def deliver(
    client: httpx.AsyncClient, events: list[dict[str, Any]], secret: str
) -> list[httpx.Response]:
    """POST each event, signed, to ``/webhooks/stripe`` on ``client``'s base URL, in order;
    stops at the first one that is not accepted (its answer is the last in the list)."""
    answers = []
    for event in events:
        payload = json.dumps(event, separators=(",", ":")).encode()
        answer = await client.post(
            "/webhooks/stripe",
            content=payload,
            headers={
                "Stripe-Signature": signature(payload, secret),
                "Content-Type": "application/json",
            },
        )
        answers.append(answer)
        if answer.status_code != 200:
            break
    return answers
