"""``POST /webhooks/stripe``: Stripe events, signature-verified, applied once, out-of-order safe."""

from typing import Any

from fastapi import APIRouter, Request

from ..service import webhooks

router = APIRouter(tags=["webhooks"])


@router.post("/webhooks/stripe")
async def stripe_webhook(request: Request) -> dict[str, Any]:
    """Stripe events (signature-verified, idempotent, out-of-order safe). Each delivery runs its
    own transactions (claim, then process), so this route takes no request session."""
    settings = request.app.state.settings
    payload = await request.body()
    event = webhooks.verify(
        payload, request.headers.get("stripe-signature"), settings.stripe_webhook_secret
    )
    return await webhooks.handle(request.app.state.sessions, settings, event)
