"""Scraping domain logic: job creation, one page of work, terminal states, sweeping, purging.

Every change to a job happens under its row lock (``SELECT … FOR UPDATE``) and in the same
transaction as the rows and events it implies, so status, counts and events never disagree:
``processed_results`` is written from ``COUNT(*)`` of the job's dedupe keys in the transaction
that stored them (no separately incremented counter that could drift from the rows).

Quota settlement (decided with billing, see ``services/billing/handlers.py``): creating a job
reserves ``target_results`` creators (``shared.quota``); every terminal state emits
``scraping.job.<state>.v1`` carrying ``reservation_id`` and ``processed_results`` through the
outbox, and billing's consumer settles the reservation from that event (what was stored stays
counted, the rest is given back). That is the ONE settlement path: scraping never calls
``billing.usage.release`` for a job that exists, so nothing is settled twice. The event is
written in the terminal transaction and waits in JetStream while billing is down, so a billing
outage delays settlement but never strands quota; billing's expiry sweeps anything else.
The only direct ``release`` is :meth:`JobService.create`'s compensation when a reservation was
taken but the job's transaction did not commit (there is no job, hence no event).
"""

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import after_rollback
from shared.events.catalogue import JobCreated, JobEnded, JobProgressed, SearchWorkItem
from shared.events.outbox import record_event, record_user_purged
from shared.models import ScrapingJob
from shared.models.enums import TERMINAL_JOB_STATUSES, JobStatus, SearchType, Service, UsageResource
from shared.queries.pagination import Page
from shared.quota import QuotaClient

from ..creators import Creator
from ..errors import CampaignNotFound, CreatorsLimitReached, JobAlreadyEnded, JobNotFound
from ..providers import Provider, ProviderError, SearchPage, SearchQuery
from ..repository import JobRepository, ResultsPage
from ..schemas import JobCreate

log = logging.getLogger("scout.scraping")

SERVICE = Service.scraping
JOB_TIMEOUT = timedelta(minutes=30)
# The reservation outlives the job's deadline (plus a sweep) so it is settled, not expired.
RESERVATION_TTL = JOB_TIMEOUT + timedelta(minutes=10)
MAX_PAGES_PER_CHAIN = 50
MAX_BARREN_PAGES = 3  # consecutive pages that add nobody new end a chain
ENDED_EVENT = {
    JobStatus.completed: "scraping.job.completed",
    JobStatus.error: "scraping.job.failed",
    JobStatus.timeout: "scraping.job.timed_out",
    JobStatus.cancelled: "scraping.job.cancelled",
}


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class WorkOutcome:
    """What handling one work item did (for logs and tests)."""

    action: str  # stored | stale | gone
    stored: int = 0


class JobService:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.repo = JobRepository(session)

    # --- create --------------------------------------------------------------------------

    async def create(
        self, quota: QuotaClient, *, user_id: uuid.UUID, body: JobCreate, provider: str,
        operation: uuid.UUID,
    ) -> ScrapingJob:  # fmt: skip
        """Reserve ``target_results`` creators (403 ``creators_limit_reached``, 503 when billing
        cannot be asked), keyed by ``operation`` (the job's id: a retried operation finds its
        hold again), with no transaction open; then one short transaction inserts the job, whose
        foreign key holds the campaign row (``FOR KEY SHARE``) against a deletion's ``FOR
        UPDATE``, and checks the campaign is still live."""
        if not await self.repo.owns_campaign(user_id, body.campaign_id):
            raise CampaignNotFound()
        await self.session.commit()  # end the lookups' read-only transaction before billing
        ttl = int(RESERVATION_TTL.total_seconds())
        reply = await quota.reserve(user_id, UsageResource.creators, body.target_results,
                                    key=f"scraping-job:{operation}", ttl_seconds=ttl)  # fmt: skip
        if not reply.allowed or reply.reservation_id is None:
            remaining = max(0, reply.limit - reply.used)
            raise CreatorsLimitReached(
                f"This search needs {body.target_results} creators but only {remaining} remain "
                "this month on your plan.",
                extra={"used": reply.used, "limit": reply.limit, "requested": body.target_results},
            )
        reservation_id = reply.reservation_id
        # If no job commits, no terminal event will ever settle the hold: give it back then.
        after_rollback(self.session, lambda: quota.try_release(reservation_id, used_amount=0))
        job = await self.insert(job_id=operation, user_id=user_id, body=body,
                                reservation_id=reservation_id, provider=provider)  # fmt: skip
        if not await self.repo.owns_campaign(user_id, body.campaign_id):
            raise CampaignNotFound()  # deleted while billing was asked: no job for it
        return job

    async def insert(
        self, *, job_id: uuid.UUID, user_id: uuid.UUID, body: JobCreate,
        reservation_id: uuid.UUID | None, provider: str,
    ) -> ScrapingJob:  # fmt: skip
        """Insert the job, its created event and its first work items (one per chain)."""
        now = _now()
        chains = body.chains
        job = await self.repo.add(
            ScrapingJob(
                id=job_id,
                user_id=user_id,
                campaign_id=body.campaign_id,
                platform=body.platform,
                search_type=body.search_type,
                # SQL NULL, not JSON null (the keywords_is_array CHECK allows only the former).
                keywords=body.keywords if body.keywords else sa.null(),
                target_username=body.target_username,
                region=body.region,
                target_results=body.target_results,
                reservation_id=reservation_id,
                timeout_at=now + JOB_TIMEOUT,
                search_params={
                    "provider": provider,
                    "chains": {
                        c: {"page": 0, "cursor": None, "done": False, "barren": 0} for c in chains
                    },
                },
            )
        )
        await self.session.refresh(job)
        await self._event(
            job,
            "scraping.job.created",
            JobCreated(
                job_id=job.id,
                user_id=user_id,
                campaign_id=job.campaign_id,
                platform=body.platform,
                search_type=body.search_type,
                target_results=job.target_results,
                keywords=body.keywords,
                target_username=body.target_username,
                reservation_id=reservation_id,
            ),
        )
        for chain in chains:
            await self._work(job, chain, 0)
        return job

    # --- one page of work ----------------------------------------------------------------

    async def handle_search(self, item: SearchWorkItem, provider: Provider) -> WorkOutcome:
        """Fetch one page for ``item``'s chain, store its new creators, schedule what is next.

        Safe under redelivery and concurrent workers: a page whose chain has moved on is stale
        and skipped, and the dedupe key table's unique constraint stores each creator once.
        No autoflush: the job's changes go out as ONE UPDATE at the end instead of one before
        every statement (none of the statements in between reads the job row).
        """
        with self.session.no_autoflush:
            return await self._handle_search(item, provider)

    async def _handle_search(self, item: SearchWorkItem, provider: Provider) -> WorkOutcome:
        job = await self.repo.get(item.job_id)
        chain_key = item.keyword or ""
        if job is None or job.status in TERMINAL_JOB_STATUSES:
            return WorkOutcome("gone")
        if not self._current(job, chain_key, item.cursor):
            return WorkOutcome("stale")
        chain = job.search_params["chains"][chain_key]
        query = SearchQuery(
            platform=job.platform,
            search_type=SearchType(job.search_type),
            term=chain_key.removeprefix("@")
            if job.search_type == SearchType.similar
            else chain_key,
            region=job.region,
        )
        # The provider call happens before the row lock: a slow provider never blocks the
        # job's other chains, its cancel or its sweeper.
        page: SearchPage | None = None
        failure = None
        try:
            page = await provider.search(query, chain["cursor"])
        except ProviderError as exc:
            failure = f"provider {provider.name}: {exc}"
        job = await self.repo.lock(item.job_id)
        if job is None or job.status in TERMINAL_JOB_STATUSES:
            return WorkOutcome("gone")
        if not self._current(job, chain_key, item.cursor):
            return WorkOutcome("stale")
        if job.status == JobStatus.pending:
            job.status, job.started_at = JobStatus.processing, _now()
        if page is None:
            await self.finish(job, JobStatus.error, error=failure)
            return WorkOutcome("stored")
        added = await self._store(job, chain_key, page.creators)
        chains = dict(job.search_params["chains"])
        state = dict(chains[chain_key])
        state["page"] += 1
        state["cursor"] = page.next_cursor
        state["barren"] = 0 if added else state["barren"] + 1
        state["done"] = (
            page.exhausted
            or state["page"] >= MAX_PAGES_PER_CHAIN
            or state["barren"] >= MAX_BARREN_PAGES
        )
        chains[chain_key] = state
        job.search_params = {**job.search_params, "chains": chains}
        job.processed_runs += 1
        if job.processed_results >= job.target_results or all(c["done"] for c in chains.values()):
            await self.finish(job, JobStatus.completed, counted=True)
        else:
            if not state["done"]:
                await self._work(job, chain_key, state["page"])
            if added:
                await self._event(
                    job,
                    "scraping.job.progressed",
                    JobProgressed(
                        job_id=job.id,
                        user_id=job.user_id,
                        campaign_id=job.campaign_id,
                        processed_results=job.processed_results,
                        target_results=job.target_results,
                        progress=float(job.progress),
                    ),
                )
        await self.session.flush()
        return WorkOutcome("stored", added)

    @staticmethod
    def _current(job: ScrapingJob, chain_key: str, page: int) -> bool:
        state = (job.search_params.get("chains") or {}).get(chain_key)
        return state is not None and not state["done"] and state["page"] == page

    async def _store(self, job: ScrapingJob, chain_key: str, creators: list[Creator]) -> int:
        """Store the page's new creators (capped at the target) as bounded batches.

        One statement (``JobRepository.store_creators``): dedupe insert, batch rows and the
        job's stored count, which becomes ``processed_results``.
        """
        page = [
            (c.creator_key, {**c.stored(), "keyword": chain_key})
            for c in creators
            if c.creator_key and c.platform == job.platform
        ]
        remaining = job.target_results - job.processed_results
        added, stored = await self.repo.store_creators(job.id, job.platform, page, remaining)
        job.processed_results = stored
        job.progress = self._progress(job)
        return added

    @staticmethod
    def _progress(job: ScrapingJob) -> Decimal:
        ratio = Decimal(job.processed_results * 100) / Decimal(job.target_results)
        return min(Decimal(100), ratio.quantize(Decimal("0.01")))

    # --- reads ---------------------------------------------------------------------------

    async def page(
        self,
        user_id: uuid.UUID,
        *,
        campaign_id: uuid.UUID | None,
        status: str | None,
        keyword: str | None,
        page: int,
        page_size: int,
    ) -> Page[ScrapingJob]:
        return await self.repo.page(
            user_id, campaign_id=campaign_id, status=status, keyword=keyword,
            page=page, page_size=page_size,
        )  # fmt: skip

    async def job(self, user_id: uuid.UUID, job_id: uuid.UUID) -> ScrapingJob:
        job = await self.repo.get(job_id, user_id=user_id)
        if job is None:
            raise JobNotFound()
        return job

    async def results(
        self, clerk_user_id: str, job_id: uuid.UUID, *, offset: int, limit: int
    ) -> ResultsPage:
        """A page of the job's creators; the caller is resolved inside the page's statement."""
        page = await self.repo.results_page(clerk_user_id, job_id, offset=offset, limit=limit)
        if page is None:
            raise JobNotFound()
        return page

    # --- terminal states -----------------------------------------------------------------

    async def finish(
        self, job: ScrapingJob, status: JobStatus, *, error: str | None = None,
        counted: bool = False,
    ) -> None:  # fmt: skip
        """Move a locked, live job to a terminal state and emit ``scraping.job.<state>.v1``.

        The event is how billing settles the reservation (see the module docstring).
        ``counted``: ``processed_results`` already holds the database's count, taken in this
        transaction under the job lock (by the page just stored), so it is not counted again.
        """
        job.status = status
        job.completed_at = _now()
        job.error = error[:2000] if error else None
        if not counted:
            job.processed_results = await self.repo.stored_count(job.id)
        job.progress = Decimal(100) if status == JobStatus.completed else self._progress(job)
        await self._event(
            job,
            ENDED_EVENT[status],
            JobEnded(
                job_id=job.id,
                user_id=job.user_id,
                campaign_id=job.campaign_id,
                status=status,
                processed_results=job.processed_results,
                reservation_id=job.reservation_id,
                error=job.error,
            ),
        )
        await self.session.flush()
        log.info(
            "scraping.job.ended",
            extra={"job_id": str(job.id), "status": str(status), "stored": job.processed_results},
        )

    async def fail(self, job_id: uuid.UUID, error: str) -> None:
        """End a live job in ``error`` (unexpected failure while working on it)."""
        job = await self.repo.lock(job_id)
        if job is not None and job.status not in TERMINAL_JOB_STATUSES:
            await self.finish(job, JobStatus.error, error=error)

    async def cancel(self, user_id: uuid.UUID, job_id: uuid.UUID) -> ScrapingJob:
        job = await self.repo.lock(job_id, user_id=user_id)
        if job is None:
            raise JobNotFound()
        if job.status == JobStatus.cancelled:
            return job  # cancelling twice is a no-op
        if job.status in TERMINAL_JOB_STATUSES:
            raise JobAlreadyEnded(f"The job already ended ({job.status}).")
        await self.finish(job, JobStatus.cancelled)
        return job

    async def sweep_timeouts(self, *, now: datetime | None = None, limit: int = 500) -> int:
        """Time out every live job past ``timeout_at`` (locked, skipping rows others hold)."""
        ids = await self.repo.overdue(now or _now(), limit)
        for job_id in ids:
            job = await self.repo.lock(job_id)
            if job is not None and job.status not in TERMINAL_JOB_STATUSES:
                await self.finish(job, JobStatus.timeout, error="timed out before finishing")
        return len(ids)

    # --- purge ---------------------------------------------------------------------------

    async def purge_user(self, user_id: uuid.UUID, clerk_user_id: str) -> int:
        """The user is gone: delete every job (results and keys cascade), and acknowledge with
        ``scraping.user.purged`` in the same transaction. Billing settles its own quota."""
        deleted = await self.repo.delete_jobs(user_id=user_id)
        await record_user_purged(self.session, service=SERVICE, user_id=user_id,
                                 clerk_user_id=clerk_user_id)  # fmt: skip
        return deleted

    async def purge_campaign(self, campaign_id: uuid.UUID) -> int:
        """The campaign is gone: cancel its live jobs (settling their quota), then delete all."""
        for job_id in await self.repo.live_ids(campaign_id=campaign_id):
            job = await self.repo.lock(job_id)
            if job is not None and job.status not in TERMINAL_JOB_STATUSES:
                await self.finish(job, JobStatus.cancelled, error="campaign deleted")
        return await self.repo.delete_jobs(campaign_id=campaign_id)

    # --- helpers -------------------------------------------------------------------------

    async def _work(self, job: ScrapingJob, chain_key: str, page: int) -> None:
        """Queue one page of work through the outbox: committed with the state, never lost."""
        await self._event(
            job,
            "scraping.work.search",
            SearchWorkItem(job_id=job.id, cursor=page, keyword=chain_key),
        )

    async def _event(self, job: ScrapingJob, type: str, data: Any) -> None:
        await record_event(
            self.session, service=SERVICE, type=type, aggregate_type="scraping_job",
            aggregate_id=job.id, data=data, user_id=job.user_id,
        )  # fmt: skip
