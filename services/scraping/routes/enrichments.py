"""``/enrichments``: enrich creators (spends the plan's enrichments) and follow the progress."""

import uuid

from fastapi import APIRouter, Request

from shared.ratelimit import rate_limit
from shared.web import CallerId, Idempotent, Quota, ReadSessionDep, SessionDep, error_responses

from ..errors import CreatorsNotInJob, EnrichmentNotFound, EnrichmentsLimitReached, JobNotFound
from ..schemas import (
    EnrichedProfile,
    EnrichmentCreate,
    EnrichmentItemPublic,
    EnrichmentPublic,
    EnrichmentSummary,
)
from ..service import EnrichmentService, EnrichmentView

router = APIRouter(tags=["enrichments"])
# Enrichments cost provider calls like search jobs do: the same per-user budget applies.
ENRICHMENT_CREATES = [rate_limit("enrichments.create", "rate_limit_job_creates_per_minute")]


def _service(request: Request, session) -> EnrichmentService:
    return EnrichmentService(session, ttl_days=request.app.state.settings.enrichment_ttl_days)


def public(view: EnrichmentView) -> EnrichmentPublic:
    e = view.enrichment
    return EnrichmentPublic(
        id=e.id, status=e.status, total=e.total, done=e.done, failed=e.failed,
        fetched=e.fetched, created_at=e.created_at, completed_at=e.completed_at,
        items=[
            EnrichmentItemPublic(
                platform=i.platform, external_id=i.external_id, handle=i.handle,
                status=i.status, error=i.error,
                profile=EnrichedProfile.of(i.profile, i.enriched_at)
                if i.profile is not None and i.status in ("fetched", "cached")
                else None,
            )
            for i in view.items
        ],
    )  # fmt: skip


@router.post(
    "/enrichments",
    status_code=202,
    response_model=EnrichmentSummary,
    summary="Enrich creators",
    dependencies=ENRICHMENT_CREATES,
    responses=error_responses(EnrichmentsLimitReached, JobNotFound, CreatorsNotInJob),
)
async def create_enrichment(
    body: EnrichmentCreate,
    request: Request,
    session: SessionDep,
    user_id: CallerId,
    quota: Quota,
    operation: Idempotent,
) -> EnrichmentSummary:
    """Fetch each creator's profile (bio, e-mails, followers, following, posts, engagement
    rate, average views, links, category, verified) from the provider, in the background.

    Give up to 100 ``creators`` (``platform``, ``external_id``, ``handle``), or a ``job_id``
    of yours with up to 100 ``creator_keys`` from its results (their data comes from the stored
    results). One enrichment per distinct creator is reserved from this month's allowance up
    front (403 ``enrichments_limit_reached`` beyond it, 503 when billing cannot be asked);
    creators enriched recently are answered from storage and, like failed ones, given back.
    Poll ``GET /enrichments/{id}``."""
    service = _service(request, session)
    creators = body.creators
    if creators is None:
        assert body.job_id is not None and body.creator_keys is not None
        creators = await service.creators_of_job(user_id, body.job_id, body.creator_keys)
    e = await service.create(quota, user_id=user_id, creators=creators, operation=operation.id)
    return EnrichmentSummary(id=e.id, status=e.status, total=e.total, done=e.done, failed=e.failed)


@router.get(
    "/enrichments/{enrichment_id}",
    response_model=EnrichmentPublic,
    summary="One enrichment and its creators",
    responses=error_responses(EnrichmentNotFound),
)
async def get_enrichment(
    enrichment_id: uuid.UUID, request: Request, user_id: CallerId, session: ReadSessionDep
) -> EnrichmentPublic:
    """Status (``pending → processing → completed``, or ``error`` when every creator failed),
    counts, and each creator in request order with its profile (``fetched`` or ``cached``) or
    the provider's reason (``failed``). ``fetched`` is what the enrichment spent."""
    return public(await _service(request, session).view(user_id, enrichment_id))
