"""``/creators``: the latest enriched profile of a creator."""

from typing import Annotated

from fastapi import APIRouter, Path, Request

from shared.models.enums import Platform
from shared.web import CallerId, ReadSessionDep, error_responses

from ..errors import CreatorNotFound
from ..schemas import CreatorProfilePublic, EnrichedProfile
from ..service import EnrichmentService

router = APIRouter(tags=["enrichments"])


@router.get(
    "/creators/{platform}/{external_id}",
    response_model=CreatorProfilePublic,
    summary="A creator's enriched profile",
    responses=error_responses(CreatorNotFound),
)
async def get_creator(
    platform: Platform,
    external_id: Annotated[str, Path(min_length=1, max_length=255)],
    request: Request,
    user_id: CallerId,
    session: ReadSessionDep,
) -> CreatorProfilePublic:
    """The latest enriched profile stored for the creator (public data; reading it spends
    nothing), or 404 ``creator_not_found`` when nobody has enriched it yet."""
    service = EnrichmentService(session, ttl_days=request.app.state.settings.enrichment_ttl_days)
    found = await service.profile(platform, external_id)
    return CreatorProfilePublic(
        platform=found.platform, external_id=found.external_id, handle=found.handle,
        profile=EnrichedProfile.of(found.profile, found.enriched_at),
    )  # fmt: skip
