"""``POST /webhooks/clerk``: Svix-signed Clerk user events, applied exactly once per svix-id."""

import binascii
import json
import logging
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from svix.webhooks import Webhook, WebhookVerificationError

from shared.errors import InvalidPayload, InvalidSignature
from shared.web import SessionDep, error_responses, webhook_request

from ..schemas import ClerkEvent
from ..service import apply_clerk_event

log = logging.getLogger("scout.identity.webhooks")
router = APIRouter(tags=["webhooks"])

SVIX_HEADERS = ("svix-id", "svix-timestamp", "svix-signature")


def verify_clerk_delivery(secret: str, body: bytes, headers: dict[str, str]) -> None:
    """Check the Svix signature and the timestamp (±5 minutes, svix's tolerance), or 400."""
    try:
        Webhook(secret).verify(body, headers)
    except (WebhookVerificationError, ValueError, binascii.Error) as exc:
        # ValueError/binascii.Error: a malformed signature header or a non-UTF-8 body.
        raise InvalidSignature() from exc


@router.post(
    "/webhooks/clerk",
    summary="Clerk user events (Svix-signed)",
    responses=error_responses(InvalidSignature, InvalidPayload),
    openapi_extra=webhook_request(
        ClerkEvent,
        {
            "svix-id": "The delivery id: the same id twice is applied once.",
            "svix-timestamp": "Unix seconds the delivery was signed at (±5 minutes accepted).",
            "svix-signature": "`v1,<base64 HMAC-SHA256>` of `<svix-id>.<svix-timestamp>.<body>`"
            " under `CLERK_WEBHOOK_SECRET`.",
        },
    ),
)
async def clerk_webhook(request: Request, session: SessionDep) -> dict[str, str]:
    """``user.created``, ``user.updated`` and ``user.deleted`` from Clerk. The signature is
    checked on the raw body before anything is read (bad or stale: 400, nothing written); the
    ``svix-id`` is recorded with the change, so a repeated delivery applies once."""
    body = await request.body()
    headers = {name: request.headers.get(name, "") for name in SVIX_HEADERS}
    verify_clerk_delivery(request.app.state.settings.clerk_webhook_secret, body, headers)
    try:
        event = json.loads(body)
    except ValueError as exc:
        raise InvalidPayload("The body is not JSON.") from exc
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        raise InvalidPayload("The event has no type.")
    data = event.get("data")
    if not isinstance(data, dict):
        raise InvalidPayload("The event has no data object.")
    svix_id = headers["svix-id"]
    if len(svix_id) > 200:
        raise InvalidPayload("svix-id is too long.")
    sent_at = datetime.fromtimestamp(int(float(headers["svix-timestamp"])), UTC)
    outcome = await apply_clerk_event(session, svix_id, event["type"], data, sent_at)
    log.info(
        "identity.webhook.clerk",
        extra={"svix_id": svix_id, "type": event["type"], "outcome": outcome},
    )
    return {"status": outcome}
