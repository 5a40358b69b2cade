"""Enriching a list's creators (through scraping) and keeping creator profiles current.

Campaign owns lists, scraping owns enrichment and billing owns quota: ``POST /lists/{id}/enrich``
asks scraping over request/reply (``scraping.enrichments.start``) to start ONE enrichment of the
list's creators, and scraping reserves and spends exactly as for ``POST /enrichments``. The
operation's id is the enrichment's id, so a retried operation finds the same enrichment.
``scraping.creator.enriched.v1`` brings every enriched profile back into ``creator_profiles``.
"""

import uuid

from nats.aio.client import Client as NATS
from sqlalchemy.ext.asyncio import AsyncSession

from shared.errors import DependencyUnavailable
from shared.events import rpc
from shared.events.enrichment import (
    CreatorEnriched,
    EnrichmentCreatorRef,
    EnrichmentStartReply,
    EnrichmentStartRequest,
)

from ..errors import EnrichmentsLimitReached, ListEmpty, ListTooLargeToEnrich, ScrapingUnavailable
from ..repository import EnrichRepository
from ..schemas import MAX_LIST_ENRICHMENT
from .campaigns import require_list

START = "scraping.enrichments.start"


class ScrapingClient:
    """Asks scraping to start an enrichment (fails closed: 503 ``scraping_unavailable``)."""

    def __init__(self, nc: NATS | None, prefix: str, *, timeout: float) -> None:
        self.nc, self.prefix, self.timeout = nc, prefix, timeout

    async def start(self, request: EnrichmentStartRequest) -> EnrichmentStartReply:
        if self.nc is None or not self.nc.is_connected:
            raise ScrapingUnavailable()
        try:
            return await rpc.request(
                self.nc, START, request, prefix=self.prefix, timeout=self.timeout
            )
        except DependencyUnavailable as exc:
            raise ScrapingUnavailable() from exc
        except rpc.RemoteError as exc:
            if exc.code == EnrichmentsLimitReached.code:
                raise EnrichmentsLimitReached(exc.detail) from exc
            raise  # another 4xx (no plan, a reservation closed): its own code and status


async def enrich_list(
    session: AsyncSession, scraping: ScrapingClient, user_id: uuid.UUID, list_id: uuid.UUID,
    operation: uuid.UUID,
) -> EnrichmentStartReply:  # fmt: skip
    """Start one enrichment of the caller's list (up to 1,000 creators)."""
    await require_list(session, user_id, list_id)
    creators = await EnrichRepository(session).list_creators(list_id, MAX_LIST_ENRICHMENT + 1)
    if not creators:
        raise ListEmpty()
    if len(creators) > MAX_LIST_ENRICHMENT:
        raise ListTooLargeToEnrich()
    await session.commit()  # end the read-only transaction before asking another service
    request = EnrichmentStartRequest(
        user_id=user_id,
        operation_id=operation,
        creators=[
            EnrichmentCreatorRef(
                platform=c["platform"], external_id=c["external_id"], handle=c["handle"][:255]
            )
            for c in creators
            if len(c["external_id"]) <= 255  # no platform's creator id comes near
        ],
    )
    return await scraping.start(request)


async def apply_enriched(session: AsyncSession, data: CreatorEnriched) -> bool:
    """Keep the creator's profile current; False when a newer enrichment is already there."""
    enrichment = data.profile.model_dump(mode="json")
    found = await EnrichRepository(session).apply(
        str(data.platform), data.external_id, data.handle, enrichment
    )
    return found is not None
