"""``/campaigns``: create against billing quota, list, read with a job summary, update, delete."""

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from shared.models.enums import CampaignStatus
from shared.queries.pagination import MAX_PAGE_SIZE
from shared.web import CallerId, Idempotent, Quota, ReadSessionDep, SessionDep, error_responses

from .. import service
from ..errors import CampaignLimitReached, CampaignNotFound, IllegalStatusTransition
from ..schemas import (
    MAX_PAGE,
    CampaignCreate,
    CampaignDetail,
    CampaignListed,
    CampaignPublic,
    CampaignUpdate,
    JobSummaryPublic,
    PageOf,
)

router = APIRouter(prefix="/campaigns", tags=["campaigns"])
CampaignPage = PageOf[CampaignListed]


@router.post(
    "",
    status_code=201,
    summary="Create a campaign",
    responses=error_responses(CampaignLimitReached),
)
async def create_campaign(
    body: CampaignCreate,
    session: SessionDep,
    user_id: CallerId,
    quota: Quota,
    operation: Idempotent,
) -> CampaignPublic:
    """Create a draft campaign, spending one of the plan's campaigns: 403
    ``campaign_limit_reached`` at the plan's limit, 403 ``no_active_plan`` without a plan, 503
    when billing cannot be asked (fail closed: nothing is created)."""
    campaign = await service.create_campaign(session, quota, user_id, body, operation.id)
    return CampaignPublic.model_validate(campaign)


@router.get("", summary="List my campaigns", response_model_exclude_unset=True)
async def list_campaigns(
    session: ReadSessionDep,
    user_id: CallerId,
    page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
    page_size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 20,
    status: CampaignStatus | None = None,
    include: Literal["jobs"] | None = None,
) -> CampaignPage:
    """The caller's campaigns, newest first, optionally of one status, with the total (a
    maintained count: a page costs the same whatever the caller owns). ``include=jobs`` adds
    each campaign's searches, newest first (two statements for the whole page)."""
    if include == "jobs":
        result = await service.campaign_page_with_jobs(
            session, user_id, page=page, page_size=page_size, status=status
        )
    else:
        result = await service.campaign_page(
            session, user_id, page=page, page_size=page_size, status=status
        )
    # One validation of plain rows (FastAPI then only checks the instance and serialises it).
    return CampaignPage.model_validate(
        {
            "items": result.items,
            "total": result.total,
            "page": result.page,
            "page_size": result.page_size,
        }
    )


@router.get(
    "/{campaign_id}",
    summary="One campaign and its searches",
    responses=error_responses(CampaignNotFound),
)
async def get_campaign(
    campaign_id: uuid.UUID, session: ReadSessionDep, user_id: CallerId
) -> CampaignDetail:
    """One campaign with its searches summarised (counts by status, creators found): three
    statements however many jobs it has."""
    campaign, summary = await service.campaign_detail(session, user_id, campaign_id)
    return CampaignDetail(
        **CampaignPublic.model_validate(campaign).model_dump(),
        jobs=JobSummaryPublic(
            total=summary.total,
            by_status=summary.by_status,
            creators_found=summary.processed_results,
        ),
    )


@router.patch(
    "/{campaign_id}",
    summary="Update a campaign",
    responses=error_responses(CampaignNotFound, IllegalStatusTransition),
)
async def update_campaign(
    campaign_id: uuid.UUID, body: CampaignUpdate, session: SessionDep, user_id: CallerId
) -> CampaignPublic:
    """Name, description or status; the status moves draft → active → completed → archived
    (any other change is 409 ``illegal_status_transition``)."""
    campaign = await service.update_campaign(session, user_id, campaign_id, body)
    return CampaignPublic.model_validate(campaign)


@router.delete(
    "/{campaign_id}",
    status_code=204,
    summary="Delete a campaign",
    responses=error_responses(CampaignNotFound),
)
async def delete_campaign(
    campaign_id: uuid.UUID, session: SessionDep, user_id: CallerId
) -> Response:
    """Delete a campaign; its searches and results go too (scraping reacts to the event)."""
    await service.delete_campaign(session, user_id, campaign_id)
    return Response(status_code=204)
