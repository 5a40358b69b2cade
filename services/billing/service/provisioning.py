"""A user's billing rows: created on ``identity.user.created``, purged on ``identity.user.deleted``.

Purging is billing's step of the user-deletion saga. The Stripe subscription is cancelled
first, and nothing is deleted until Stripe has answered: Stripe unreachable, 5xx or 429 raises
:class:`TransientError`, so the consumer rolls back and retries the event with capped backoff
for as long as it takes; "no such subscription" or a subscription already ended counts as
done; any other Stripe refusal (a bad key) is a permanent failure that the consumer
dead-letters after its attempts, leaving the deletion visibly pending. Then every billing row
goes, with ``billing.user.purged`` in the same transaction: identity's signal that billing's
step is done.
"""

import logging
import uuid
from typing import NoReturn

import stripe
from sqlalchemy.ext.asyncio import AsyncSession

from shared.events.failures import TransientError
from shared.events.outbox import record_user_purged
from shared.models.enums import Service
from shared.settings import Settings

from .. import stripe_api
from ..repository import AccountRepository

log = logging.getLogger("scout.billing.provisioning")


async def provision(session: AsyncSession, user_id: uuid.UUID) -> bool:
    """Create the subscription (no plan, status none), billing and usage rows; idempotent.

    Returns False when the user no longer exists (deleted before the event arrived).
    """
    return await AccountRepository(session).provision(user_id)


async def purge(
    session: AsyncSession, settings: Settings, user_id: uuid.UUID, clerk_user_id: str
) -> str | None:
    """Cancel the user's Stripe subscription (when configured), then delete billing rows and
    announce ``billing.user.purged``. Returns the cancelled subscription id, if any."""
    repo = AccountRepository(session)
    sub_id = await repo.lock_subscription_id(user_id)
    cancelled = None
    if sub_id and stripe_api.configured(settings):
        cancelled = await cancel_subscription(settings, sub_id)
    elif sub_id:
        log.warning("billing.cancel_unconfigured", extra={"subscription": sub_id})
    await repo.purge(user_id)
    await record_user_purged(
        session, service=Service.billing, user_id=user_id, clerk_user_id=clerk_user_id
    )
    return cancelled


async def cancel_subscription(settings: Settings, sub_id: str) -> str | None:
    """Cancel ``sub_id`` at Stripe: its id once cancelled, None when there was nothing left to
    cancel. Raises :class:`TransientError` while Stripe cannot answer."""
    client = stripe_api.client(settings)
    try:
        await client.v1.subscriptions.cancel_async(sub_id)
        return sub_id
    except stripe.StripeError as exc:
        try:
            done = await _nothing_to_cancel(client, sub_id, exc)
        except stripe.StripeError as lookup:
            _fail(sub_id, lookup)
        if not done:
            _fail(sub_id, exc)
    log.info("billing.cancel_skipped", extra={"subscription": sub_id})
    return None


async def _nothing_to_cancel(
    client: stripe.StripeClient, sub_id: str, exc: stripe.StripeError
) -> bool:
    """Whether Stripe's refusal means the subscription is gone or has already ended."""
    if not isinstance(exc, stripe.InvalidRequestError):
        return False
    if exc.code == "resource_missing":
        return True
    try:  # refused for another reason: done if it has ended, a real refusal otherwise
        sub = await client.v1.subscriptions.retrieve_async(sub_id)
    except stripe.InvalidRequestError as missing:
        return missing.code == "resource_missing"
    return sub["status"] in stripe_api.ENDED


def _fail(sub_id: str, exc: stripe.StripeError) -> NoReturn:
    """Raise a Stripe error as what it is: transient when Stripe could not answer, else as is."""
    if stripe_api.unavailable(exc):
        raise TransientError(f"Stripe could not cancel {sub_id} now: {exc}") from exc
    raise exc
