"""Every subject the identity worker consumes and every job it runs, one function each."""

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from shared.events.catalogue import SubscriptionChanged
from shared.events.envelope import Envelope
from shared.models.enums import SubscriptionStatus
from shared.scheduler import Job

from .service import complete_onboarding, purge_deleted_users

COMPLETING = {SubscriptionStatus.active, SubscriptionStatus.trialing}


async def on_subscription_changed(session: AsyncSession, envelope: Envelope) -> None:
    """``billing.subscription.changed.v1``: an active or trialing subscription completes
    onboarding."""
    data = envelope.payload
    assert isinstance(data, SubscriptionChanged)
    if data.status in COMPLETING:
        await complete_onboarding(session, data.user_id)


async def purge_users(session: AsyncSession, job: Job) -> dict[str, Any]:
    """Scheduled: delete the ``users`` rows whose deletion every purging service has applied
    (each one's inbox holds the user's ``identity.user.deleted``), or whose grace ran out."""
    return {"purged": await purge_deleted_users(session)}
