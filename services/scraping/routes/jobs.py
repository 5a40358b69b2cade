"""``/jobs``: create, list, read and cancel search jobs, and page through their creators."""

import uuid
from typing import Annotated

import orjson
from fastapi import APIRouter, Query, Request, Response

from shared.models.enums import JobStatus
from shared.queries.pagination import MAX_PAGE, TOTAL_CAPPED, TOTAL_CAPPED_DOC, capped
from shared.ratelimit import rate_limit
from shared.results import QueryTooShort, ResultsSort
from shared.web import (
    NO_NUL,
    CallerId,
    CurrentUser,
    Idempotent,
    Quota,
    ReadSessionDep,
    SessionDep,
    error_responses,
)

from ..errors import CampaignNotFound, CreatorsLimitReached, JobAlreadyEnded, JobNotFound
from ..schemas import JobCreate, JobPage, JobPublic, ResultsPage, ResultsQuery
from ..service import JobService, ResultsService

router = APIRouter(tags=["jobs"])
# Per-user budget on job creation: each job starts provider calls that cost money.
JOB_CREATES = [rate_limit("jobs.create", "rate_limit_job_creates_per_minute")]


@router.post(
    "/jobs",
    status_code=202,
    response_model=JobPublic,
    summary="Start a search job",
    dependencies=JOB_CREATES,
    responses=error_responses(CampaignNotFound, CreatorsLimitReached),
)
async def create_job(
    body: JobCreate,
    request: Request,
    session: SessionDep,
    user_id: CallerId,
    quota: Quota,
    operation: Idempotent,
) -> JobPublic:
    """Validate, reserve ``target_results`` creators from billing (403
    ``creators_limit_reached`` beyond this month's allowance, 503 when billing cannot be
    asked), then queue the job; workers fill it in the background (poll ``GET /jobs/{id}``)."""
    provider = request.app.state.settings.scraping_provider
    job = await JobService(session).create(
        quota, user_id=user_id, body=body, provider=provider, operation=operation.id
    )
    return JobPublic.of(job)


@router.get(
    "/jobs",
    response_model=JobPage,
    summary="List my jobs",
    responses={200: {"headers": TOTAL_CAPPED_DOC}},
)
async def list_jobs(
    user_id: CallerId,
    session: ReadSessionDep,
    response: Response,
    campaign_id: uuid.UUID | None = None,
    status: JobStatus | None = None,
    keyword: Annotated[str | None, Query(min_length=1, max_length=100, pattern=NO_NUL)] = None,
    page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
    page_size: Annotated[int, Query(ge=1, le=100)] = 20,
) -> JobPage:
    """Newest first; ``keyword`` keeps jobs with that keyword (exactly as the search was given
    it). ``total`` is exact up to 1,000 jobs (then 1,000 and ``X-Total-Capped: true``): a page
    costs the same however many jobs the caller has or match."""
    found = await JobService(session).page(
        user_id, campaign_id=campaign_id, status=status, keyword=keyword,
        page=page, page_size=page_size,
    )  # fmt: skip
    total, total_capped = capped(found.total)
    if total_capped:
        response.headers.update(TOTAL_CAPPED)
    # One validation of plain rows (FastAPI then only checks the instance and serialises it).
    return JobPage.model_validate(
        {"items": found.items, "total": total, "page": page, "page_size": page_size}
    )


@router.get(
    "/jobs/{job_id}",
    response_model=JobPublic,
    summary="One job and its progress",
    responses=error_responses(JobNotFound),
)
async def get_job(job_id: uuid.UUID, user_id: CallerId, session: ReadSessionDep) -> JobPublic:
    """Status (``pending → processing → completed | error | timeout | cancelled``) and progress
    counted from the stored creators, never from a counter that can drift."""
    return JobPublic.of(await JobService(session).job(user_id, job_id))


@router.get(
    "/jobs/{job_id}/results",
    response_model=ResultsPage,
    summary="A page of creators, narrowed and sorted",
    responses={**error_responses(JobNotFound, QueryTooShort), 200: {"headers": TOTAL_CAPPED_DOC}},
)
async def job_results(
    job_id: uuid.UUID,
    principal: CurrentUser,
    session: ReadSessionDep,
    query: Annotated[ResultsQuery, Query()],
) -> Response:
    """Creators in discovery order by default; ``min_followers`` / ``max_followers``,
    ``verified``, ``has_email`` and ``q`` (a case-insensitive substring of username, display
    name or bio) narrow them, ``sort`` orders them (``found``, ``followers_desc``,
    ``followers_asc``; unknown follower counts last). ``total`` counts the narrowed set, exactly
    up to 1,000 matches (then 1,000 and ``X-Total-Capped: true``); narrowed by ``verified``
    and/or ``has_email`` alone, exactly at any size. Every item carries its
    ``creator_key``. A page costs the same whatever the job's size. On a job of more than
    1,000 creators (none a search makes), ``q`` needs three letters or digits in a row (422
    ``query_too_short``): shorter text cannot be looked up, only read creator by creator. One
    statement (such text first reads the job's size): the caller is resolved inside it, so
    this route does not take ``CallerId``."""
    offset, limit = query.offset, query.limit
    total_capped = False
    if query.narrows or query.sort != ResultsSort.found:
        narrowed = await ResultsService(session).narrowed(
            principal.clerk_user_id, job_id, query, offset=offset, limit=limit
        )
        items, total, next_offset = narrowed.items_json, narrowed.total, narrowed.next_offset
        total_capped = narrowed.total_capped
    else:
        page = await JobService(session).results(
            principal.clerk_user_id, job_id, offset=offset, limit=limit
        )
        items, total, next_offset = page.items_json, page.total, page.next_offset
    # The creators' JSON goes out as Postgres wrote it: never parsed, never rebuilt.
    head = orjson.dumps(
        {"total": total, "offset": offset, "limit": limit, "next_offset": next_offset}
    )
    body = b'{"items":' + items.encode() + b"," + head[1:]
    headers = TOTAL_CAPPED if total_capped else None
    return Response(body, media_type="application/json", headers=headers)


@router.post(
    "/jobs/{job_id}/cancel",
    response_model=JobPublic,
    summary="Cancel a live job",
    responses=error_responses(JobNotFound, JobAlreadyEnded),
)
async def cancel_job(job_id: uuid.UUID, user_id: CallerId, session: SessionDep) -> JobPublic:
    """Stop a pending or processing job; creators already found stay, and the unused part of
    its quota goes back to the plan. A job that already ended is 409."""
    return JobPublic.of(await JobService(session).cancel(user_id, job_id))
