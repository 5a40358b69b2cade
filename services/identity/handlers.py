"""Every subject the identity worker consumes and every job it runs, one function each."""

from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from shared.events.catalogue import SubscriptionChanged, UserPurged, spec_for
from shared.events.envelope import Envelope
from shared.models.enums import SubscriptionStatus
from shared.scheduler import Job

from .service import ask_again, complete_onboarding, purge_deleted_users, record_purged
from .service.users import ASK_AGAIN_AFTER

COMPLETING = {SubscriptionStatus.active, SubscriptionStatus.trialing}


async def on_subscription_changed(session: AsyncSession, envelope: Envelope) -> None:
    """``billing.subscription.changed.v1``: an active or trialing subscription completes
    onboarding."""
    data = envelope.payload
    assert isinstance(data, SubscriptionChanged)
    if data.status in COMPLETING:
        await complete_onboarding(session, data.user_id)


async def on_user_purged(session: AsyncSession, envelope: Envelope) -> None:
    """``<billing|campaign|scraping>.user.purged.v1``: that service's step of the user's
    deletion is done (the producer comes from the catalogue, never from the message)."""
    data = envelope.payload
    assert isinstance(data, UserPurged)
    await record_purged(session, data.user_id, spec_for(envelope.type).producer.value)


async def purge_users(session: AsyncSession, job: Job) -> dict[str, Any]:
    """Scheduled: delete the ``users`` rows whose deletion every purging service has
    acknowledged (``user_deletion_steps`` all applied)."""
    return {"purged": await purge_deleted_users(session)}


async def ask_again_for_deletions(session: AsyncSession, job: Job) -> dict[str, Any]:
    """Scheduled: re-announce deletions a service has left pending for a long time."""
    after = timedelta(seconds=job.payload.get("after_seconds", ASK_AGAIN_AFTER.total_seconds()))
    return {"asked_again": await ask_again(session, after)}
