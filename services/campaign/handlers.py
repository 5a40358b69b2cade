"""Every subject the campaign worker consumes and every job it runs, one function each.

A handler that needs more than its session and message (the quota client) is built by a
``*_handler(dependency)`` factory, which ``worker.py`` calls with what the worker context holds.
"""

import logging
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from shared.events.envelope import Envelope
from shared.events.rpc import RemoteError
from shared.quota import QuotaClient
from shared.scheduler import Job, JobHandler

from . import service

log = logging.getLogger("scout.campaign.worker")

# Time scraping gets to see campaign.campaign.deleted before the row may go (it only goes
# once no job references it anyway).
SWEEP_GRACE = timedelta(minutes=1)


async def on_user_deleted(session: AsyncSession, envelope: Envelope) -> None:
    """``identity.user.deleted.v1``: remove the user's lists (items cascade) now, and their
    campaigns once scraping has purged the campaigns' jobs (the sweep takes the rest)."""
    user_id = envelope.payload.user_id
    lists, campaigns = await service.purge_user(session, user_id, envelope.payload.clerk_user_id)
    log.info(
        "campaign.user_purged",
        extra={"user_id": str(user_id), "lists": lists, "campaigns_removed": campaigns},
    )


async def on_creator_enriched(session: AsyncSession, envelope: Envelope) -> None:
    """``scraping.creator.enriched.v1``: keep the creator's profile current (email, followers,
    engagement rate shown by list items and the CSV export)."""
    applied = await service.apply_enriched(session, envelope.payload)
    log.debug(
        "campaign.creator_enriched",
        extra={"external_id": envelope.payload.external_id, "applied": applied},
    )


async def sweep_deleted(session: AsyncSession, job: Job) -> dict[str, Any]:
    """Scheduled: remove campaigns whose deletion started and whose jobs scraping has purged."""
    grace = timedelta(seconds=job.payload.get("grace_seconds", SWEEP_GRACE.total_seconds()))
    return {"removed": await service.sweep_deleted(session, grace)}


def confirm_reservation_handler(quota: QuotaClient) -> JobHandler:
    """``campaign.confirm_reservation``: repeat the create's confirm (idempotent at billing)."""

    async def confirm_reservation(session: AsyncSession, job: Job) -> dict[str, Any]:
        """Raises to retry when billing is down; an unknown reservation (its user was purged)
        leaves nothing to confirm."""
        reservation_id = uuid.UUID(job.payload["reservation_id"])
        try:
            reply = await quota.release(reservation_id, int(job.payload.get("used_amount", 1)))
        except RemoteError as exc:
            if exc.status_code == 404:
                return {"status": "unknown"}
            raise
        return {"status": str(reply.status)}

    return confirm_reservation
