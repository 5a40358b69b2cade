"""Event and scheduled-job handlers of the scraping worker (one function per subject)."""

import logging
from datetime import timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.db import run_hooks
from shared.events.catalogue import SearchWorkItem
from shared.events.enrichment import (
    EnrichmentStartReply,
    EnrichmentStartRequest,
    EnrichWorkItem,
)
from shared.events.envelope import Envelope
from shared.events.failures import is_transient
from shared.events.rpc import RpcHandler
from shared.quota import QuotaClient
from shared.results import JobCreatorsReply, JobCreatorsRequest
from shared.scheduler import Job

from .errors import NoCreatorsToEnrich
from .providers import Provider
from .schemas import CreatorRef
from .service import EnrichmentService, JobService, ResultsService

log = logging.getLogger("scout.scraping.worker")


def search_handler(provider: Provider):
    """``scraping.work.search.v1``: one page of one chain (the inbox makes it exactly once)."""

    async def on_search(session: AsyncSession, envelope: Envelope) -> None:
        item = envelope.payload
        assert isinstance(item, SearchWorkItem)
        try:
            async with session.begin_nested():
                outcome = await JobService(session).handle_search(item, provider)
        except Exception as exc:
            if is_transient(exc):  # database, NATS or the provider away: not the job's fault
                raise  # the consumer retries the item with backoff, for as long as it takes
            # A bug or bad data, not a passing fault: end the job in error now rather than
            # dead-lettering the item and leaving the job to the sweeper.
            log.exception("scraping.work.failed", extra={"job_id": str(item.job_id)})
            await JobService(session).fail(item.job_id, f"internal error: {type(exc).__name__}")
            return
        log.debug(
            "scraping.work.handled",
            extra={"job_id": str(item.job_id), "page": item.cursor, "action": outcome.action},
        )

    return on_search


def enrich_handler(provider: Provider, ttl_days: float):
    """``scraping.work.enrich.v1``: one creator of an enrichment (the inbox makes it once)."""

    async def on_enrich(session: AsyncSession, envelope: Envelope) -> None:
        work = envelope.payload
        assert isinstance(work, EnrichWorkItem)
        try:
            async with session.begin_nested():
                outcome = await EnrichmentService(session, ttl_days=ttl_days).handle_enrich(
                    work, provider
                )
        except Exception as exc:
            if is_transient(exc):  # the provider, database or NATS away: retried with backoff
                raise
            log.exception(
                "scraping.enrich.failed", extra={"enrichment_id": str(work.enrichment_id)}
            )
            await EnrichmentService(session).fail_item(
                work, f"internal error: {type(exc).__name__}"
            )
            return
        log.debug(
            "scraping.enrich.handled",
            extra={"enrichment_id": str(work.enrichment_id), "action": outcome.action},
        )

    return on_enrich


def start_enrichment_handler(
    sessions: async_sessionmaker[AsyncSession], quota: QuotaClient, ttl_days: float
) -> RpcHandler:
    """``scraping.enrichments.start``: one enrichment for creators another service names (a
    list's, for campaign); reserved and created exactly as ``POST /enrichments`` does."""

    async def start(request: EnrichmentStartRequest) -> EnrichmentStartReply:
        creators = []
        for c in request.creators:
            try:
                creators.append(CreatorRef.model_validate(c.model_dump()))
            except ValidationError:  # a blank handle, say: nothing to look up
                continue
        if not creators:
            raise NoCreatorsToEnrich()
        # The unit of work as a request's: commit, or roll back and run the compensation
        # (the hold is given back when the enrichment did not commit).
        async with sessions() as session:
            try:
                e = await EnrichmentService(session, ttl_days=ttl_days).create(
                    quota, user_id=request.user_id, creators=creators,
                    operation=request.operation_id,
                )  # fmt: skip
                await session.commit()
            except BaseException:
                await session.rollback()
                await run_hooks(session, committed=False)
                raise
            await run_hooks(session, committed=True)
            return EnrichmentStartReply(
                id=e.id, status=e.status, total=e.total, done=e.done, failed=e.failed
            )

    return start


async def on_user_deleted(session: AsyncSession, envelope: Envelope) -> None:
    """``identity.user.deleted.v1``: delete every enrichment and job of the user (items and
    results cascade)."""
    data = envelope.payload
    await EnrichmentService(session).purge_user(data.user_id)
    deleted = await JobService(session).purge_user(data.user_id, data.clerk_user_id)
    log.info(
        "scraping.purged_user", extra={"user_id": str(envelope.payload.user_id), "jobs": deleted}
    )


async def on_campaign_deleted(session: AsyncSession, envelope: Envelope) -> None:
    """``campaign.campaign.deleted.v1``: cancel live jobs of the campaign, then delete them all."""
    deleted = await JobService(session).purge_campaign(envelope.payload.campaign_id)
    log.info(
        "scraping.purged_campaign",
        extra={"campaign_id": str(envelope.payload.campaign_id), "jobs": deleted},
    )


def sweep_timeouts(enrichment_timeout: timedelta):
    """Scheduled: jobs past ``timeout_at`` end as ``timeout`` and enrichments live longer than
    ``enrichment_timeout`` end in ``error`` (nothing stays processing forever)."""

    async def sweep(session: AsyncSession, job: Job) -> dict[str, Any]:
        jobs = await JobService(session).sweep_timeouts()
        enrichments = await EnrichmentService(session).sweep_timeouts(enrichment_timeout)
        return {"timed_out": jobs, "enrichments_timed_out": enrichments}

    return sweep


def results_creators_handler(reads: async_sessionmaker[AsyncSession]) -> RpcHandler:
    """``scraping.results.creators``: creators of a user's job, from the stored results
    (another user's job or none → ``job_not_found``). Read-only, on a read session
    (``shared.queries.sessions``): no transaction round trips; the job's owner is checked
    first and a job deleted in between answers its keys as missing."""

    async def creators(request: JobCreatorsRequest) -> JobCreatorsReply:
        async with reads() as session:
            return await ResultsService(session).creators(request)

    return creators
