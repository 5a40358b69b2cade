"""The scraping HTTP API (port 8004): create, list, read, cancel search jobs and page results."""

import logging
import uuid
from typing import Annotated

import orjson
from fastapi import APIRouter, FastAPI, Query, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from shared.auth import Principal
from shared.errors import LimitReached, NotFound
from shared.events.catalogue import UsageReleaseRequest, UsageReserveRequest
from shared.models.enums import JobStatus, UsageResource
from shared.queries.pagination import MAX_PAGE
from shared.queries.users import live_user_id
from shared.ratelimit import per_user
from shared.settings import Settings
from shared.web import CurrentUser, ReadSessionDep, SessionDep, ask
from shared.web import create_app as create_service_app

from .repository import MAX_RESULTS_LIMIT, JobRepository
from .schemas import JobCreate, JobPage, JobPublic, ResultsPage
from .service import RESERVATION_TTL, JobService

log = logging.getLogger("scout.scraping.api")

router = APIRouter(tags=["jobs"])
# Per-user budget on job creation (reference §9: dispatch had no rate limit at all).
JobCreator = per_user("jobs.create", "rate_limit_job_creates_per_minute")


async def _user_id(session: AsyncSession, principal: CurrentUser) -> uuid.UUID:
    user_id = await live_user_id(session, principal.clerk_user_id)
    if user_id is None:  # no profile yet: nothing of theirs can exist
        raise NotFound("Campaign not found.")
    return user_id


@router.post("/jobs", status_code=202, response_model=JobPublic, summary="Start a search job")
async def create_job(
    body: JobCreate, request: Request, principal: JobCreator, session: SessionDep
) -> JobPublic:
    """Validate, reserve ``target_results`` creators from billing, then queue the job."""
    repo = JobRepository(session)
    user_id = await _user_id(session, principal)
    if not await repo.owns_campaign(user_id, body.campaign_id):
        raise NotFound("Campaign not found.")
    job_id = uuid.uuid4()
    reply = await ask(
        request,
        "billing.usage.reserve",
        UsageReserveRequest(
            user_id=user_id,
            resource=UsageResource.creators,
            amount=body.target_results,
            idempotency_key=f"scraping-job:{job_id}",
            ttl_seconds=int(RESERVATION_TTL.total_seconds()),
        ),
    )
    if not reply.allowed:
        remaining = max(0, reply.limit - reply.used)
        raise LimitReached(
            f"This search needs {body.target_results} creators but only {remaining} remain "
            "this month on your plan.",
            code=reply.code or "creators_limit_reached",
            extra={"used": reply.used, "limit": reply.limit, "requested": body.target_results},
        )
    try:
        job = await JobService(session).create(
            job_id=job_id,
            user_id=user_id,
            body=body,
            reservation_id=reply.reservation_id,
            provider=request.app.state.settings.scraping_provider,
        )
    except Exception:
        # No job, so no terminal event will ever settle the hold: give it back now
        # (best effort; billing expires it otherwise).
        try:
            await ask(
                request,
                "billing.usage.release",
                UsageReleaseRequest(reservation_id=reply.reservation_id, used_amount=0),
            )
        except Exception as exc:
            log.warning("scraping.reservation.release_failed", extra={"error": repr(exc)})
        raise
    return JobPublic.of(job)


@router.get("/jobs", response_model=JobPage, summary="List your jobs")
async def list_jobs(
    principal: CurrentUser,
    session: ReadSessionDep,
    campaign_id: uuid.UUID | None = None,
    status: JobStatus | None = None,
    keyword: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
    page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
    page_size: Annotated[int, Query(ge=1, le=100)] = 20,
) -> JobPage:
    """Newest first; ``keyword`` matches jobs whose keywords contain it (JSONB GIN index)."""
    repo = JobRepository(session)
    user_id = await live_user_id(session, principal.clerk_user_id)
    if user_id is None:
        return JobPage(items=[], total=0, page=page, page_size=page_size)
    found = await repo.page(
        user_id, campaign_id=campaign_id, status=status, keyword=keyword,
        page=page, page_size=page_size,
    )  # fmt: skip
    return JobPage(
        items=[JobPublic.of(j) for j in found.items],
        total=found.total,
        page=page,
        page_size=page_size,
    )


async def _owned_job(session: AsyncSession, principal: Principal, job_id: uuid.UUID):
    repo = JobRepository(session)
    user_id = await live_user_id(session, principal.clerk_user_id)
    job = await repo.get(job_id, user_id=user_id) if user_id else None
    if job is None:
        raise NotFound("Job not found.")
    return repo, job


@router.get("/jobs/{job_id}", response_model=JobPublic, summary="One job and its progress")
async def get_job(job_id: uuid.UUID, principal: CurrentUser, session: ReadSessionDep) -> JobPublic:
    _, job = await _owned_job(session, principal, job_id)
    return JobPublic.of(job)


@router.get("/jobs/{job_id}/results", response_model=ResultsPage, summary="A page of creators")
async def job_results(
    job_id: uuid.UUID,
    principal: CurrentUser,
    session: ReadSessionDep,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_RESULTS_LIMIT)] = 100,
) -> Response:
    """Creators in stored order; reads only the batches overlapping the page (O(page))."""
    page = await JobRepository(session).results_page(
        principal.clerk_user_id, job_id, offset=offset, limit=limit
    )
    if page is None:
        raise NotFound("Job not found.")
    # The creators' JSON goes out as Postgres wrote it: never parsed, never rebuilt.
    head = orjson.dumps(
        {"total": page.total, "offset": offset, "limit": limit, "next_offset": page.next_offset}
    )
    body = b'{"items":' + page.items_json.encode() + b"," + head[1:]
    return Response(body, media_type="application/json")


@router.post("/jobs/{job_id}/cancel", response_model=JobPublic, summary="Cancel a live job")
async def cancel_job(job_id: uuid.UUID, principal: CurrentUser, session: SessionDep) -> JobPublic:
    user_id = await live_user_id(session, principal.clerk_user_id)
    if user_id is None:
        raise NotFound("Job not found.")
    job = await JobService(session).cancel(user_id, job_id)
    return JobPublic.of(job)


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service_app(
        "scraping",
        routers=[router],
        description="Search jobs, their results and the creator providers.",
        settings=settings,
    )
