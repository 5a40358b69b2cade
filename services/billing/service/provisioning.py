"""A user's billing rows: created on ``identity.user.created``, purged on ``identity.user.deleted``.

Purging is one step of the user-deletion saga: the Stripe subscription is cancelled first (a
Stripe failure raises, and the consumer retries the event with backoff until Stripe answers;
an already-cancelled or unknown subscription counts as done), then every billing row goes, in
the same transaction as the inbox row that tells identity billing has applied the deletion.
"""

import logging
import uuid

import stripe
from sqlalchemy.ext.asyncio import AsyncSession

from shared.settings import Settings

from .. import stripe_api
from ..repository import AccountRepository

log = logging.getLogger("scout.billing.provisioning")


async def provision(session: AsyncSession, user_id: uuid.UUID) -> bool:
    """Create the subscription (no plan, status none), billing and usage rows; idempotent.

    Returns False when the user no longer exists (deleted before the event arrived).
    """
    return await AccountRepository(session).provision(user_id)


async def purge(session: AsyncSession, settings: Settings, user_id: uuid.UUID) -> str | None:
    """Cancel the user's Stripe subscription (when configured), then delete billing rows.

    Returns the cancelled subscription id, if any.
    """
    repo = AccountRepository(session)
    sub_id = await repo.lock_subscription_id(user_id)
    cancelled = None
    if sub_id and stripe_api.configured(settings):
        try:
            await stripe_api.client(settings).v1.subscriptions.cancel_async(sub_id)
            cancelled = sub_id
        except stripe.InvalidRequestError as exc:  # already gone at Stripe: nothing to cancel
            log.info("billing.cancel_skipped", extra={"subscription": sub_id, "error": str(exc)})
    await repo.purge(user_id)
    return cancelled
