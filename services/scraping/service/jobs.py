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
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from shared.context import current_causation_id, current_correlation_id
from shared.db import after_rollback
from shared.events.catalogue import JobCreated, JobEnded, JobProgressed, SearchWorkItem
from shared.events.outbox import record_event, record_user_purged
from shared.models import ScrapingJob
from shared.models.enums import TERMINAL_JOB_STATUSES, JobStatus, SearchType, UsageResource
from shared.queries.pagination import Page
from shared.quota import QuotaClient

from ..errors import CampaignNotFound, CreatorsLimitReached, JobAlreadyEnded, JobNotFound
from ..providers import Provider, ProviderError, SearchQuery
from ..repository import JobRepository, ResultsPage, WorkRepository
from ..schemas import JobCreate
from .work import SERVICE, next_states, outbox_row

log = logging.getLogger("scout.scraping")

JOB_TIMEOUT = timedelta(minutes=30)
# The reservation outlives the job's deadline (plus a sweep) so it is settled, not expired.
RESERVATION_TTL = JOB_TIMEOUT + timedelta(minutes=10)
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
        self.work = WorkRepository(session)

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
        Three statements for a page: the job read before the provider call, the job lock, and
        ONE statement for everything the page implies (``WorkRepository.step``: the
        creators, the chain's state, the job's counters and completion, the outbox rows).
        """
        chain_key = item.keyword or ""
        found = await self.work.lookup(item.job_id, chain_key)
        if found is None or found[0] in TERMINAL_JOB_STATUSES:
            return WorkOutcome("gone")
        _, platform, search_type, region, chain = found
        if not self._current_state(chain, item.cursor):
            return WorkOutcome("stale")
        query = SearchQuery(
            platform=platform,
            search_type=SearchType(search_type),
            term=chain_key.removeprefix("@") if search_type == SearchType.similar else chain_key,
            region=region,
        )
        # The provider call happens before the row lock: a slow provider never blocks the
        # job's other chains, its cancel or its sweeper.
        try:
            page = await provider.search(query, chain["cursor"])
        except ProviderError as exc:
            return await self._provider_failed(item, chain_key, f"provider {provider.name}: {exc}")
        locked = await self.work.lock(item.job_id)
        if locked is None or locked[0] in TERMINAL_JOB_STATUSES:
            return WorkOutcome("gone")
        _, chains, processed, target, user_id, campaign_id, reservation_id = locked
        state = chains.get(chain_key)
        if not self._current_state(state, item.cursor):
            return WorkOutcome("stale")
        # The page's new creators in page order, one per key (the first occurrence wins).
        unique: dict[str, dict[str, Any]] = {}
        for c in page.creators:
            if c.creator_key and c.platform == platform and c.creator_key not in unique:
                unique[c.creator_key] = {**c.stored(), "keyword": chain_key}
        fresh, barren = next_states(state, page)
        ref = {"job_id": item.job_id, "user_id": user_id, "campaign_id": campaign_id}
        event = outbox_row
        added, stored, complete = await self.work.step(
            {
                "job_id": item.job_id,
                "platform": platform,
                "keys": list(unique),
                "creators": orjson.dumps(list(unique.values())).decode(),
                "limit": max(0, target - processed),  # the target caps what is stored
                "target": target,
                "chain": chain_key,
                "state_fresh": orjson.dumps(fresh).decode(),
                "state_barren": orjson.dumps(barren).decode(),
                "done_fresh": fresh["done"],
                "done_barren": barren["done"],
                "others_done": all(c["done"] for k, c in chains.items() if k != chain_key),
                "now": _now(),
                "service": str(SERVICE),
                "user_id": user_id,
                "correlation_id": current_correlation_id(),
                "causation_id": current_causation_id(),
                **event("work", "scraping.work.search",
                        SearchWorkItem(job_id=item.job_id, cursor=fresh["page"],
                                       keyword=chain_key)),
                **event("progress", "scraping.job.progressed",
                        JobProgressed(**ref, processed_results=0, target_results=target,
                                      progress=0)),
                **event("ended", ENDED_EVENT[JobStatus.completed],
                        JobEnded(**ref, status=JobStatus.completed, processed_results=0,
                                 reservation_id=reservation_id)),
            }
        )  # fmt: skip
        if complete:
            log.info("scraping.job.ended", extra={"job_id": str(item.job_id),
                     "status": str(JobStatus.completed), "stored": stored})  # fmt: skip
        return WorkOutcome("stored", added)

    async def _provider_failed(
        self, item: SearchWorkItem, chain_key: str, error: str
    ) -> WorkOutcome:
        """The provider could not give the page: the job ends in ``error`` if it is still live
        and the item still current under the lock."""
        job = await self.repo.lock(item.job_id)
        if job is None or job.status in TERMINAL_JOB_STATUSES:
            return WorkOutcome("gone")
        if not self._current(job, chain_key, item.cursor):
            return WorkOutcome("stale")
        if job.status == JobStatus.pending:
            job.started_at = _now()
        await self.finish(job, JobStatus.error, error=error)
        return WorkOutcome("stored")

    @staticmethod
    def _current(job: ScrapingJob, chain_key: str, page: int) -> bool:
        chains = job.search_params.get("chains") or {}
        return JobService._current_state(chains.get(chain_key), page)

    @staticmethod
    def _current_state(state: dict[str, Any] | None, page: int) -> bool:
        return state is not None and not state["done"] and state["page"] == page

    @staticmethod
    def _progress(job: ScrapingJob) -> Decimal:
        ratio = Decimal(job.processed_results * 100) / Decimal(job.target_results)
        return min(Decimal(100), ratio.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))

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
    ) -> Page[dict[str, Any]]:
        """The user's jobs as plain dicts (``JobPublic`` fields); ``total`` counted up to
        ``COUNT_CAP + 1`` (``schemas.capped``)."""
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
        """The user is gone: delete every job (results and keys cascade) and the user's search
        counters by day, and acknowledge with ``scraping.user.purged`` in the same transaction.
        Billing settles its own quota."""
        deleted = await self.repo.delete_jobs(user_id=user_id)
        await self.repo.delete_user_days(user_id)
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
