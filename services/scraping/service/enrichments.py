"""Creator enrichment: reserve, queue one work item per creator, fetch, settle.

Quota (decided with billing, as for search jobs): creating an enrichment reserves ``total``
enrichments (``shared.quota``) with no transaction open, keyed by the operation (its id), so a
retried operation finds its hold again. Creators with a stored profile fresher than
``ENRICHMENT_TTL_DAYS`` are answered at once and spend nothing; every other creator is one
``scraping.work.enrich`` item on the work queue. When the last item is resolved, the
enrichment's transaction emits ``scraping.enrichment.completed.v1`` with ``fetched`` (the
creators really asked from the provider) and billing's consumer settles the reservation from it:
``fetched`` stays counted, cached and failed creators are given back. That event is the ONE
settlement path; the only direct release is the compensation when the insert did not commit.
An enrichment still live ``ENRICHMENT_TIMEOUT_MINUTES`` after its creation (a provider outage
that never ends) is ended by the scheduled sweep: ``error``, its unfinished items ``failed``,
settled through the same event with what was really fetched.

Every count change happens under the enrichment's row lock, in the transaction that changes the
item, so ``done``/``failed``/``fetched`` always agree with the items.
"""

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import after_rollback
from shared.events.enrichment import (
    CreatorEnriched,
    CreatorProfileData,
    EnrichmentEnded,
    EnrichWorkItem,
)
from shared.events.outbox import record_event
from shared.models import CreatorEnrichment, Enrichment
from shared.models.enums import (
    EnrichmentItemStatus,
    EnrichmentStatus,
    Service,
    UsageResource,
)
from shared.quota import QuotaClient
from shared.results import JobCreatorsRequest

from ..errors import (
    CreatorNotFound,
    CreatorsNotInJob,
    EnrichmentNotFound,
    EnrichmentsLimitReached,
)
from ..providers import Profile, ProfileQuery, Provider, ProviderError
from ..repository import EnrichmentRepository, ItemView
from ..schemas import CreatorRef
from .results import ResultsService

log = logging.getLogger("scout.scraping.enrichment")

SERVICE = Service.scraping
# A hold outlives any enrichment: the timeout sweep ends one that never finishes well before
# billing's expiry would give the hold back (and a late settlement still charges what was fetched).
RESERVATION_TTL = timedelta(hours=6)
TIMED_OUT = "timed out"
TERMINAL = frozenset({EnrichmentStatus.completed, EnrichmentStatus.error})


def _now() -> datetime:
    return datetime.now(UTC)


def reservation_key(operation: uuid.UUID) -> str:
    return f"scraping-enrichment:{operation}"


@dataclass(frozen=True)
class EnrichOutcome:
    """What handling one work item did (for logs and tests)."""

    action: str  # fetched | cached | failed | stale | gone


@dataclass(frozen=True)
class EnrichmentView:
    enrichment: Enrichment
    items: list[ItemView]


class EnrichmentService:
    def __init__(self, session: AsyncSession, *, ttl_days: float = 30) -> None:
        self.session = session
        self.repo = EnrichmentRepository(session)
        self.ttl = timedelta(days=ttl_days)

    # --- create --------------------------------------------------------------------------

    async def creators_of_job(
        self, user_id: uuid.UUID, job_id: uuid.UUID, keys: list[str]
    ) -> list[CreatorRef]:
        """The job's stored creators for ``keys`` (the data comes from the results, never from
        the client); another user's job is 404, keys the job never found are 422."""
        found = await ResultsService(self.session).creators(
            JobCreatorsRequest(user_id=user_id, job_id=job_id, creator_keys=keys)
        )  # the same lookup by key that lists use
        if found.missing:
            raise CreatorsNotInJob(
                f"{len(found.missing)} creator key(s) are not among the job's results.",
                extra={"missing": found.missing[:100]},
            )
        return [
            CreatorRef(
                platform=c.platform,
                external_id=c.external_id or c.creator_key,
                handle=c.username or c.creator_key,
            )
            for c in found.creators
        ]

    async def create(
        self, quota: QuotaClient, *, user_id: uuid.UUID, creators: list[CreatorRef],
        operation: uuid.UUID,
    ) -> Enrichment:  # fmt: skip
        """Reserve one enrichment per distinct creator (403 ``enrichments_limit_reached``, 503
        when billing cannot be asked) with no transaction open, then insert the enrichment, its
        items, its answers from fresh stored profiles and its work items in one transaction."""
        existing = await self.repo.get(operation, user_id=user_id)
        if existing is not None:  # a retried operation (its id is the operation's)
            return existing
        unique = list({(c.platform, c.external_id): c for c in creators}.values())
        total = len(unique)
        await self.session.commit()  # end the lookups' read-only transaction before billing
        reply = await quota.reserve(
            user_id, UsageResource.enrichments, total, key=reservation_key(operation),
            ttl_seconds=int(RESERVATION_TTL.total_seconds()),
        )  # fmt: skip
        if not reply.allowed or reply.reservation_id is None:
            remaining = max(0, reply.limit - reply.used)
            raise EnrichmentsLimitReached(
                f"This enrichment needs {total} enrichments but only {remaining} remain this"
                " month on your plan.",
                extra={"used": reply.used, "limit": reply.limit, "requested": total},
            )
        reservation_id = reply.reservation_id
        # If nothing commits, no completion event will ever settle the hold: give it back then.
        after_rollback(self.session, lambda: quota.try_release(reservation_id, used_amount=0))
        return await self._insert(operation, user_id, unique, reservation_id)

    async def _insert(
        self, enrichment_id: uuid.UUID, user_id: uuid.UUID, creators: list[CreatorRef],
        reservation_id: uuid.UUID,
    ) -> Enrichment:  # fmt: skip
        keys = [(str(c.platform), c.external_id) for c in creators]
        fresh = await self.repo.fresh_profiles(keys, _now() - self.ttl)
        items = [
            {
                "position": i,
                "platform": str(c.platform),
                "external_id": c.external_id,
                "handle": c.handle,
                "status": EnrichmentItemStatus.cached
                if key in fresh
                else EnrichmentItemStatus.pending,
            }
            for i, (c, key) in enumerate(zip(creators, keys, strict=True))
        ]
        cached = sum(1 for key in keys if key in fresh)
        enrichment = await self.repo.add(
            Enrichment(
                id=enrichment_id,
                user_id=user_id,
                total=len(creators),
                done=cached,
                reservation_id=reservation_id,
                status=EnrichmentStatus.processing if cached else EnrichmentStatus.pending,
            ),
            items,
        )
        for key in dict.fromkeys(k for k in keys if k in fresh):
            await self._enriched(fresh[key], enrichment)
        for item in items:
            if item["status"] == EnrichmentItemStatus.pending:
                await self._event(
                    enrichment,
                    "scraping.work.enrich",
                    EnrichWorkItem(enrichment_id=enrichment.id, position=item["position"]),
                )
        if cached == enrichment.total:
            await self._finish(enrichment)
        await self.session.flush()
        return enrichment

    # --- one creator of work -------------------------------------------------------------

    async def handle_enrich(self, work: EnrichWorkItem, provider: Provider) -> EnrichOutcome:
        """Fetch one creator's profile (or answer it from a fresh stored one), store it and
        count it. Safe under redelivery and concurrent workers: an item no longer pending is
        stale and skipped. The provider is asked before the row lock, so a slow provider never
        blocks the enrichment's other items."""
        enrichment = await self.repo.get(work.enrichment_id)
        if enrichment is None or enrichment.status in TERMINAL:
            return EnrichOutcome("gone")
        item = await self.repo.item(work.enrichment_id, work.position)
        if item is None or item.status != EnrichmentItemStatus.pending:
            return EnrichOutcome("stale")
        key = (item.platform, item.external_id)
        stored = (await self.repo.fresh_profiles([key], _now() - self.ttl)).get(key)
        profile: Profile | None = None
        error = None
        if stored is None:
            try:
                profile = await provider.profile(
                    ProfileQuery(item.platform, item.external_id, item.handle)
                )
            except ProviderError as exc:
                error = f"provider {provider.name}: {exc}"[:2000]
        enrichment = await self.repo.lock(work.enrichment_id)
        if enrichment is None or enrichment.status in TERMINAL:
            return EnrichOutcome("gone")
        item = await self.repo.item(work.enrichment_id, work.position)
        if item is None or item.status != EnrichmentItemStatus.pending:
            return EnrichOutcome("stale")
        if profile is not None:
            stored = await self._store(item.platform, item.external_id, item.handle, profile)
            status = EnrichmentItemStatus.fetched
            enrichment.done += 1
            enrichment.fetched += 1
        elif stored is not None:
            status = EnrichmentItemStatus.cached
            enrichment.done += 1
        else:
            status = EnrichmentItemStatus.failed
            enrichment.failed += 1
        await self.repo.set_items(enrichment.id, [work.position], status, error)
        if stored is not None:
            await self._enriched(stored, enrichment)
        if enrichment.done + enrichment.failed >= enrichment.total:
            await self._finish(enrichment)
        elif enrichment.status == EnrichmentStatus.pending:
            enrichment.status = EnrichmentStatus.processing
        await self.session.flush()
        return EnrichOutcome(str(status))

    async def fail_item(self, work: EnrichWorkItem, error: str) -> None:
        """An unexpected (not transient) failure on one creator: count it as failed."""
        enrichment = await self.repo.lock(work.enrichment_id)
        if enrichment is None or enrichment.status in TERMINAL:
            return
        item = await self.repo.item(work.enrichment_id, work.position)
        if item is None or item.status != EnrichmentItemStatus.pending:
            return
        await self.repo.set_items(enrichment.id, [work.position], "failed", error[:2000])
        enrichment.failed += 1
        if enrichment.done + enrichment.failed >= enrichment.total:
            await self._finish(enrichment)
        await self.session.flush()

    async def sweep_timeouts(
        self, max_age: timedelta, *, now: datetime | None = None, limit: int = 500
    ) -> int:
        """End every live enrichment created more than ``max_age`` ago: ``error``, its pending
        items ``failed`` ("timed out"), and the completion event billing settles from (with what
        was really fetched). Each under its row lock, so an item finishing at the same moment
        and the sweep end the enrichment (and settle its hold) once between them; an item
        arriving later finds it ended and changes nothing."""
        ended = 0
        for enrichment_id in await self.repo.overdue((now or _now()) - max_age, limit):
            enrichment = await self.repo.lock(enrichment_id)
            if enrichment is None or enrichment.status in TERMINAL:
                continue  # an item ended it meanwhile
            enrichment.failed += await self.repo.fail_pending(enrichment.id, TIMED_OUT)
            await self._finish(enrichment, EnrichmentStatus.error)
            ended += 1
        await self.session.flush()
        return ended

    async def _store(
        self, platform: str, external_id: str, handle: str, profile: Profile
    ) -> CreatorEnrichment:
        now = _now()
        data = profile.model_dump(mode="json")
        row_id = await self.repo.store_profile(platform, external_id, handle, data, now)
        return CreatorEnrichment(
            id=row_id, platform=platform, external_id=external_id, handle=handle, profile=data,
            enriched_at=now,
        )  # fmt: skip

    async def _finish(self, enrichment: Enrichment, status: EnrichmentStatus | None = None) -> None:
        """Resolve the enrichment and emit the event billing settles its hold from."""
        if status is None:
            failed_all = enrichment.failed == enrichment.total
            status = EnrichmentStatus.error if failed_all else EnrichmentStatus.completed
        enrichment.status = status
        enrichment.completed_at = _now()
        await self._event(
            enrichment,
            "scraping.enrichment.completed",
            EnrichmentEnded(
                enrichment_id=enrichment.id, user_id=enrichment.user_id, total=enrichment.total,
                done=enrichment.done, failed=enrichment.failed, fetched=enrichment.fetched,
                reservation_id=enrichment.reservation_id,
            ),
        )  # fmt: skip
        log.info(
            "scraping.enrichment.ended",
            extra={"enrichment_id": str(enrichment.id), "fetched": enrichment.fetched},
        )

    async def _enriched(self, stored: CreatorEnrichment, enrichment: Enrichment) -> None:
        """``scraping.creator.enriched.v1``: campaign keeps its creator profiles current."""
        await record_event(
            self.session, service=SERVICE, type="scraping.creator.enriched",
            aggregate_type="creator_profile", aggregate_id=stored.id,
            data=CreatorEnriched(
                platform=stored.platform, external_id=stored.external_id, handle=stored.handle,
                profile=CreatorProfileData(**stored.profile, enriched_at=stored.enriched_at),
                enrichment_id=enrichment.id,
            ),
        )  # fmt: skip

    async def _event(self, enrichment: Enrichment, type: str, data: Any) -> None:
        await record_event(
            self.session, service=SERVICE, type=type, aggregate_type="scraping_enrichment",
            aggregate_id=enrichment.id, data=data, user_id=enrichment.user_id,
        )  # fmt: skip

    # --- reads ---------------------------------------------------------------------------

    async def view(self, user_id: uuid.UUID, enrichment_id: uuid.UUID) -> EnrichmentView:
        enrichment = await self.repo.get(enrichment_id, user_id=user_id)
        if enrichment is None:
            raise EnrichmentNotFound()
        return EnrichmentView(enrichment, await self.repo.items(enrichment_id))

    async def profile(self, platform: str, external_id: str) -> CreatorEnrichment:
        found = await self.repo.profile(platform, external_id)
        if found is None:
            raise CreatorNotFound()
        return found

    async def purge_user(self, user_id: uuid.UUID) -> int:
        """The user is gone: their enrichments go (items cascade); profiles are public data."""
        return await self.repo.delete_for_user(user_id)
