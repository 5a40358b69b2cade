"""Clerk deliveries (``POST /webhooks/clerk``): the payload's fields, applied exactly once.

A delivery is recorded by its svix-id in ``webhook_events`` in the same transaction as its
effect, so however often (or concurrently) Clerk repeats it, it applies once.
"""

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from shared.errors import InvalidPayload

from ..repository import IdentityRepository
from .users import create_user, record_updated, start_deletion


def _clerk_email(data: dict[str, Any]) -> str | None:
    addresses = [a for a in data.get("email_addresses") or [] if isinstance(a, dict)]
    primary = data.get("primary_email_address_id")
    chosen = next((a for a in addresses if a.get("id") == primary), None) or next(
        iter(addresses), None
    )
    email = chosen.get("email_address") if chosen else None
    return email.strip() if isinstance(email, str) and email.strip() else None


def _clerk_name(data: dict[str, Any]) -> str | None:
    parts = [data.get("first_name"), data.get("last_name")]
    name = " ".join(p.strip() for p in parts if isinstance(p, str) and p.strip())
    return name[:120] or None


def _clerk_user_id(data: dict[str, Any]) -> str:
    clerk_user_id = data.get("id")
    if not isinstance(clerk_user_id, str) or not clerk_user_id or len(clerk_user_id) > 200:
        raise InvalidPayload("The event has no user id (data.id).")
    return clerk_user_id


async def apply_clerk_event(
    session: AsyncSession, svix_id: str, event_type: str, data: dict[str, Any], at: datetime
) -> str:
    """Apply one verified Clerk delivery exactly once; returns what happened (for the reply)."""
    repo = IdentityRepository(session)
    clerk_user_id = data.get("id") if isinstance(data.get("id"), str) else None
    if not await repo.claim_webhook(svix_id, event_type, at, {"clerk_user_id": clerk_user_id}):
        return "duplicate"
    match event_type:
        case "user.created" | "user.updated":
            await _upsert_from_clerk(session, _clerk_user_id(data), data, event_type, at)
            return "applied"
        case "user.deleted":
            return await start_deletion(session, _clerk_user_id(data))
        case _:
            return "ignored"


async def _upsert_from_clerk(
    session: AsyncSession, clerk_user_id: str, data: dict[str, Any], event_type: str, at: datetime
) -> None:
    """``user.created`` / ``user.updated``: create the user if missing, else apply what changed.

    An update that arrives before its create (or a create after ``GET /me`` made the user)
    converges on the same state; ``identity.user.created`` is still emitted exactly once.
    """
    repo = IdentityRepository(session)
    email, full_name = _clerk_email(data), _clerk_name(data)
    user_pk = await create_user(
        session,
        clerk_user_id,
        email=email,
        full_name=full_name,
        webhook_event=event_type,
        webhook_at=at,
    )
    if user_pk is not None:
        return
    row = await repo.lock_user(clerk_user_id)
    if row is None or row.deleted_at is not None:
        return  # deleted meanwhile: a late update must not resurrect it
    changes: dict[str, Any] = {}
    if email and email != row.email:
        changes["email"] = email
    # Clerk's name fills a blank one; a name the user typed in onboarding is theirs to keep.
    if (
        full_name
        and (event_type == "user.updated" or not row.full_name)
        and full_name != row.full_name
    ):
        changes["full_name"] = full_name
    if changes:
        await repo.update_user(row.id, **changes)
        await record_updated(session, row.id, clerk_user_id, changes)
    await repo.touch_webhook(row.id, event_type, at)
