"""Users: creation on first sight, the caller's profile, deletion and the final purge.

Functions take the caller's session and flush; the request or message handler commits, so
every state change and its outbox event commit together.
"""

import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.db import transaction
from shared.errors import UserNotFound
from shared.events.outbox import record_event
from shared.models.enums import Service
from shared.queries.pagination import Page
from shared.queries.users import UserProfile, get_user_profile, update_user_profile

from ..errors import UserDeleted
from ..repository import IdentityRepository

log = logging.getLogger("scout.identity")

SERVICE = Service.identity
# Services that purge a deleted user's rows; the users row goes once all have acknowledged it.
PURGING_SERVICES = (Service.billing.value, Service.campaign.value, Service.scraping.value)
# A step still pending this long after it was asked is asked again: a new
# ``identity.user.deleted`` (purges are idempotent), in case the event or the acknowledgement
# aged out of its stream while a worker was away, or was dead-lettered and fixed since.
ASK_AGAIN_AFTER = timedelta(hours=24)


async def record_user_event(
    session: AsyncSession, type: str, user_pk: uuid.UUID, clerk_user_id: str, **data: Any
) -> None:
    """An ``identity.user.*`` / ``identity.onboarding.*`` event about one user, in the outbox
    of the caller's transaction; its data always names the user both ways."""
    await record_event(
        session,
        service=SERVICE,
        type=type,
        aggregate_type="user",
        aggregate_id=user_pk,
        user_id=user_pk,
        data={"user_id": user_pk, "clerk_user_id": clerk_user_id, **data},
    )


async def create_user(
    session: AsyncSession,
    clerk_user_id: str,
    *,
    email: str | None = None,
    full_name: str | None = None,
    webhook_event: str | None = None,
    webhook_at: datetime | None = None,
) -> uuid.UUID | None:
    """Create the user, its system data and ``identity.user.created`` unless it exists (race-safe).

    Returns the new id, or None when the user already existed (no event then: exactly once).
    """
    repo = IdentityRepository(session)
    user_pk = await repo.insert_user(clerk_user_id, email=email, full_name=full_name)
    if user_pk is None:
        return None
    await repo.insert_system_data(user_pk, event=webhook_event, at=webhook_at)
    await record_user_event(
        session,
        "identity.user.created",
        user_pk,
        clerk_user_id,
        email=email,
        full_name=full_name,
    )
    log.info("identity.user.created", extra={"clerk_user_id": clerk_user_id})
    return user_pk


async def ensure_profile(
    session: AsyncSession, clerk_user_id: str, *, email: str | None = None
) -> UserProfile:
    """The caller's profile, creating the user on first sight (before Clerk's webhook arrives)."""
    profile = await get_user_profile(session, clerk_user_id)
    if profile is None:
        # INSERT … ON CONFLICT DO NOTHING, then read: the read is a new statement, so it sees
        # the row a concurrent first call committed while our insert waited on it.
        await create_user(session, clerk_user_id, email=email)
        profile = await get_user_profile(session, clerk_user_id)
    if profile is None:  # pragma: no cover - the insert or the conflict guarantees a row
        raise UserNotFound("User could not be created.")
    if profile.deleted_at is not None:
        raise UserDeleted()
    return profile


async def read_profile(
    reads: AsyncSession,
    units: async_sessionmaker[AsyncSession],
    clerk_user_id: str,
    *,
    email: str | None = None,
) -> UserProfile:
    """``GET /me``: one autocommit read on ``reads`` when the user exists (every call but the
    first); only a user not seen yet is created, in a unit of work of its own from ``units``."""
    profile = await get_user_profile(reads, clerk_user_id)
    if profile is None:
        async with transaction(units) as session:
            return await ensure_profile(session, clerk_user_id, email=email)
    if profile.deleted_at is not None:
        raise UserDeleted()
    return profile


async def record_updated(
    session: AsyncSession, user_pk: uuid.UUID, clerk_user_id: str, changes: dict[str, Any]
) -> None:
    """``identity.user.updated`` with the fields that changed."""
    await record_user_event(
        session, "identity.user.updated", user_pk, clerk_user_id, changes=changes
    )


async def update_profile(
    session: AsyncSession, clerk_user_id: str, fields: dict[str, Any], *, email: str | None = None
) -> UserProfile:
    """``PATCH /me``: write the given profile fields; emits ``identity.user.updated`` on change."""
    current = await ensure_profile(session, clerk_user_id, email=email)
    changes = {k: v for k, v in fields.items() if getattr(current, k) != v}
    if not changes:
        return current
    profile = await update_user_profile(session, clerk_user_id, service=SERVICE, **changes)
    await record_updated(session, profile.id, clerk_user_id, changes)
    return profile


async def start_deletion(session: AsyncSession, clerk_user_id: str) -> str:
    """Mark the user deleted and tell every service (``identity.user.deleted``) to purge its rows.

    One pending step per purging service is written in the same transaction. The ``users`` row
    stays (soft-deleted, invisible to /me and admin checks) until every service has acknowledged
    its purge (:func:`record_purged`, :func:`purge_deleted_users`), so billing can still find the
    Stripe customer it must cancel. FKs cascade as the backstop.
    """
    repo = IdentityRepository(session)
    user_pk = await repo.mark_deleted(clerk_user_id)
    if user_pk is None:
        return "ignored"
    await repo.insert_deletion_steps(user_pk, PURGING_SERVICES)
    await record_user_event(session, "identity.user.deleted", user_pk, clerk_user_id)
    log.info("identity.user.deletion_started", extra={"clerk_user_id": clerk_user_id})
    return "applied"


async def record_purged(session: AsyncSession, user_pk: uuid.UUID, service: str) -> bool:
    """``<service>.user.purged``: that service's step of the user's deletion is done."""
    applied = await IdentityRepository(session).mark_step_applied(user_pk, service)
    if applied:
        log.info("identity.user.step_applied", extra={"user_id": str(user_pk), "by": service})
    return applied


async def purge_deleted_users(session: AsyncSession) -> list[str]:
    """Delete the rows of users whose deletion every service acknowledged; their Clerk ids."""
    rows = await IdentityRepository(session).purge_deleted(PURGING_SERVICES)
    for row in rows:
        log.info("identity.user.purged", extra={"clerk_user_id": row.user_id})
    return [row.user_id for row in rows]


async def ask_again(session: AsyncSession, after: timedelta = ASK_AGAIN_AFTER) -> list[str]:
    """Announce the deletion again for users with a step pending ``after`` since it was last
    asked; their Clerk ids. Every service applies it again (a no-op where done) and acknowledges
    again (ignored where recorded), so a lost event or acknowledgement never blocks a purge."""
    rows = await IdentityRepository(session).ask_again(after)
    for row in rows:
        await record_user_event(session, "identity.user.deleted", row.id, row.user_id)
        log.warning("identity.user.deletion_asked_again", extra={"clerk_user_id": row.user_id})
    return [row.user_id for row in rows]


async def search_users(
    session: AsyncSession, email: str | None, *, page: int, page_size: int
) -> Page[dict[str, Any]]:
    """Users whose email starts with ``email`` (case-insensitive), newest first (admin)."""
    return await IdentityRepository(session).search_users(email, page, page_size)
