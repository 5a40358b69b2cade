"""Every request, subject and scheduled job the billing worker serves, one function each.

A handler that needs more than its session and message (the settings, for Stripe; a session
factory, for request/reply, which opens its own transaction) is built by a
``*_handler(dependency)`` factory, which ``worker.py`` calls with what the worker context holds.
"""

import logging
import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.events.catalogue import (
    UsageReleaseKeyRequest,
    UsageReleaseReply,
    UsageReleaseRequest,
    UsageReserveReply,
    UsageReserveRequest,
)
from shared.events.consumer import Handler
from shared.events.envelope import Envelope
from shared.events.rpc import RpcHandler
from shared.scheduler import Job, JobHandler
from shared.settings import Settings

from .errors import ReservationNotFound
from .service import account, provisioning, subscriptions, usage

log = logging.getLogger("scout.billing.worker")

Sessions = async_sessionmaker[AsyncSession]

# --- request/reply -----------------------------------------------------------------------------


def reserve_handler(sessions: Sessions) -> RpcHandler:
    """``billing.usage.reserve``: hold quota if the limit allows (its own transaction)."""

    async def reserve(request: UsageReserveRequest) -> UsageReserveReply:
        async with sessions() as session, session.begin():
            return await usage.reserve(session, request)

    return reserve


def release_handler(sessions: Sessions) -> RpcHandler:
    """``billing.usage.release``: settle a hold (its own transaction)."""

    async def release(request: UsageReleaseRequest) -> UsageReleaseReply:
        async with sessions() as session, session.begin():
            return await usage.release(session, request)

    return release


def release_key_handler(sessions: Sessions) -> RpcHandler:
    """``billing.usage.release_key``: give up a key's hold, even one not reserved yet."""

    async def release_key(request: UsageReleaseKeyRequest) -> UsageReleaseReply:
        async with sessions() as session, session.begin():
            return await usage.release_key(session, request)

    return release_key


# --- events ------------------------------------------------------------------------------------


async def on_user_created(session: AsyncSession, envelope: Envelope) -> None:
    """``identity.user.created.v1``: provision the user's subscription, billing and usage rows."""
    if not await provisioning.provision(session, envelope.payload.user_id):
        log.info("billing.provision_skipped", extra={"user_id": str(envelope.payload.user_id)})


def user_deleted_handler(settings: Settings) -> Handler:
    """``identity.user.deleted.v1``: cancel the Stripe subscription (retried for as long as
    Stripe cannot answer), then purge billing rows and acknowledge with ``billing.user.purged``."""

    async def on_user_deleted(session: AsyncSession, envelope: Envelope) -> None:
        data = envelope.payload
        await provisioning.purge(session, settings, data.user_id, data.clerk_user_id)

    return on_user_deleted


async def on_step_changed(session: AsyncSession, envelope: Envelope) -> None:
    """``identity.onboarding.step_changed.v1``: remember the plan chosen during onboarding."""
    plan = envelope.payload.plan
    if envelope.payload.step == "plan_selected" and plan:
        await account.intend_plan(session, envelope.payload.user_id, plan)


async def on_campaign_deleted(session: AsyncSession, envelope: Envelope) -> None:
    """``campaign.campaign.deleted.v1``: the campaign no longer counts (campaigns at once)."""
    await usage.give_back_campaign(session, envelope.payload.user_id)


async def on_job_ended(session: AsyncSession, envelope: Envelope) -> None:
    """``scraping.job.<completed|failed|timed_out|cancelled>.v1``: settle the job's hold from
    its ``processed_results`` (the one settlement path for scraping's reservations)."""
    await _settle(session, envelope.payload.reservation_id, envelope.payload.processed_results)


async def on_enrichment_ended(session: AsyncSession, envelope: Envelope) -> None:
    """``scraping.enrichment.completed.v1``: settle the enrichment's hold; what was fetched
    stays counted, cached and failed creators are given back."""
    await _settle(session, envelope.payload.reservation_id, envelope.payload.fetched)


async def _settle(session: AsyncSession, reservation_id: uuid.UUID | None, used: int) -> None:
    """Settle a hold scraping reported ended: ``used`` stays counted, the rest is given back."""
    if reservation_id is None:
        return
    try:
        await usage.release(
            session, UsageReleaseRequest(reservation_id=reservation_id, used_amount=used)
        )
    except ReservationNotFound:  # purged with its user
        log.info("billing.release_unknown", extra={"reservation": str(reservation_id)})


# --- scheduled jobs ----------------------------------------------------------------------------


async def expire_reservations(session: AsyncSession, job: Job) -> dict[str, Any]:
    """Give back every hold past its deadline."""
    return {"expired": await usage.expire_reservations(session)}


async def monthly_reset(session: AsyncSession, job: Job) -> dict[str, Any]:
    """Reset the monthly counters of users whose usage month is over."""
    return {"reset": await usage.reset_monthly_usage(session)}


def reconcile_handler(settings: Settings) -> JobHandler:
    """Make users with a Stripe customer match what Stripe says now."""

    async def reconcile(session: AsyncSession, job: Job) -> dict[str, Any]:
        return await subscriptions.reconcile(session, settings)

    return reconcile


def trial_expiry_handler(settings: Settings) -> JobHandler:
    """Ended trials: refreshed from Stripe when possible, each expiry announced once."""

    async def trial_expiry(session: AsyncSession, job: Job) -> dict[str, Any]:
        return await subscriptions.expire_trials(session, settings)

    return trial_expiry
