"""The campaign worker: purge on user deletion, reservation confirms, deleted-campaign sweep.

The dashboard reads scraping's tables directly (reads across services are allowed), so no
``scraping.job.*`` consumer is needed to keep a copy of job state here.
"""

import logging
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from shared.events.envelope import Envelope
from shared.events.rpc import RemoteError
from shared.scheduler import Job, Recurring
from shared.worker import ConsumerSpec, WorkerContext, WorkerSpec

from . import quota
from .repository import CampaignRepository

log = logging.getLogger("scout.campaign.worker")

SWEEP_JOB = "campaign.sweep_deleted"
# Time scraping gets to see campaign.campaign.deleted before the row may go (it only goes
# once no job references it anyway).
SWEEP_GRACE = timedelta(minutes=1)
SCHEDULES = [Recurring("sweep-deleted-campaigns", "* * * * *", SWEEP_JOB)]


async def on_user_deleted(session: AsyncSession, envelope: Envelope) -> None:
    """Remove the user's lists (items cascade) and campaigns (once scraping purged their jobs)."""
    user_id = envelope.payload.user_id
    lists, campaigns = await CampaignRepository(session).purge_user(user_id)
    log.info(
        "campaign.user_purged",
        extra={"user_id": str(user_id), "lists": lists, "campaigns_removed": campaigns},
    )


async def sweep_deleted(session: AsyncSession, job: Job) -> dict[str, Any]:
    grace = timedelta(seconds=job.payload.get("grace_seconds", SWEEP_GRACE.total_seconds()))
    removed = await CampaignRepository(session).sweep_deleted(grace)
    return {"removed": len(removed)}


def build(ctx: WorkerContext) -> WorkerSpec:
    async def confirm_reservation(session: AsyncSession, job: Job) -> dict[str, Any]:
        """Repeat the create's confirm (idempotent at billing); raises to retry when billing is
        down. An unknown reservation (its user was purged) is nothing left to confirm."""
        reservation_id = uuid.UUID(job.payload["reservation_id"])
        try:
            reply = await quota.release_from_worker(
                ctx.nc, ctx.prefix, reservation_id, int(job.payload.get("used_amount", 1))
            )
        except RemoteError as exc:
            if exc.status_code == 404:
                return {"status": "unknown"}
            raise
        return {"status": str(reply.status)}

    return WorkerSpec(
        consumers=[ConsumerSpec("identity", {"identity.user.deleted.v1": on_user_deleted})],
        jobs={quota.CONFIRM_JOB: confirm_reservation, SWEEP_JOB: sweep_deleted},
        schedules=SCHEDULES,
    )
