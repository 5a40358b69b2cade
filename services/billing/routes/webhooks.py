"""``POST /webhooks/stripe``: Stripe events, signature-verified, applied once, out-of-order safe."""

from typing import Any

from fastapi import APIRouter, Request

from shared.errors import DependencyUnavailable, InvalidPayload, InvalidSignature
from shared.web import database_gate, error_responses, webhook_request

from ..errors import WebhookFailed, WebhookInProgress
from ..schemas import StripeEvent
from ..service import webhooks

router = APIRouter(tags=["webhooks"])


@router.post(
    "/webhooks/stripe",
    summary="Stripe events (signed)",
    responses=error_responses(
        InvalidSignature, InvalidPayload, WebhookInProgress, WebhookFailed, DependencyUnavailable
    ),
    openapi_extra=webhook_request(
        StripeEvent,
        {
            "Stripe-Signature": '`t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">` under'
            " `STRIPE_WEBHOOK_SECRET`; older than 300 s is refused."
        },
    ),
)
async def stripe_webhook(request: Request) -> dict[str, Any]:
    """Checkout, subscription and invoice events from Stripe: the signature is checked on the
    raw body first (bad or stale: 400, nothing written); each event id is applied once, and an
    event older than the state held never overwrites it. A failure answers 500 so Stripe
    retries; an event another delivery is processing answers 409."""
    # Each delivery runs its own transactions (claim, then process): no request session.
    settings = request.app.state.settings
    payload = await request.body()
    event = webhooks.verify(
        payload, request.headers.get("stripe-signature"), settings.stripe_webhook_secret
    )
    database_gate(request)  # 503 at once while the database is known to be away
    return await webhooks.handle(request.app.state.sessions, settings, event)
