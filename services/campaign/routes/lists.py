"""``/lists``: creator lists, their items (bulk add/update/remove) and the streamed CSV export."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse

from shared.errors import DependencyUnavailable
from shared.models.enums import ListBucket
from shared.queries.pagination import MAX_PAGE_SIZE, TOTAL_CAPPED, TOTAL_CAPPED_DOC, capped
from shared.ratelimit import rate_limit
from shared.results import QueryTooShort, ResultsClient
from shared.web import (
    IDEMPOTENT,
    CallerId,
    Idempotent,
    ReadSessionDep,
    SessionDep,
    error_responses,
    raises,
)

from .. import service
from ..errors import (
    EnrichmentsLimitReached,
    JobNotFound,
    ListEmpty,
    ListNotFound,
    ListTooLargeToEnrich,
    ScrapingUnavailable,
)
from ..export import csv_chunks
from ..schemas import (
    MAX_PAGE,
    MAX_TAG_FILTERS,
    ItemsAdd,
    ItemsAdded,
    ItemsAddedFromJob,
    ItemsRemove,
    ItemsRemoved,
    ItemsUpdate,
    ItemsUpdated,
    ListCreate,
    ListDetail,
    ListEnrichmentStarted,
    ListItemPublic,
    ListPublic,
    ListUpdate,
    PageOf,
    Tag,
)

router = APIRouter(prefix="/lists", tags=["lists"])

PageQ = Annotated[int, Query(ge=1, le=MAX_PAGE)]
PageSizeQ = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)]
TagsQ = Annotated[list[Tag] | None, Query(max_length=MAX_TAG_FILTERS)]
# List writes spend the caller's per-minute budget first (429 with Retry-After when spent).
LIST_WRITES = [rate_limit("lists.write", "rate_limit_list_writes_per_minute")]


NOT_FOUND = error_responses(ListNotFound)


@router.post("", status_code=201, summary="Create a list", dependencies=[*LIST_WRITES, IDEMPOTENT])
async def create_list(body: ListCreate, session: SessionDep, user_id: CallerId) -> ListPublic:
    """A new, empty creator list (its type, privacy and tags as given)."""
    return ListPublic.model_validate(await service.create_list(session, user_id, body))


@router.get("", summary="List my lists", responses={200: {"headers": TOTAL_CAPPED_DOC}})
async def list_lists(
    session: ReadSessionDep,
    user_id: CallerId,
    response: Response,
    page: PageQ = 1,
    page_size: PageSizeQ = 20,
    archived: bool | None = None,
    tag: TagsQ = None,
    any_tag: TagsQ = None,
) -> PageOf[ListPublic]:
    """The caller's lists, most recently changed first, with their (always current) stats.
    ``tag`` (repeatable) keeps lists holding every tag given, ``any_tag`` (repeatable) lists
    holding at least one (at most 10 of each, 1 to 100 characters). Filtered by tags,
    ``total`` is exact up to 1,000 lists (then 1,000 and ``X-Total-Capped: true``), so a page
    costs the same however many lists match; otherwise it is exact."""
    result = await service.list_page(
        session, user_id, page=page, page_size=page_size, archived=archived,
        tags=tag or (), any_tags=any_tag or (),
    )  # fmt: skip
    total = result.total
    if tag or any_tag:
        total, total_capped = capped(total)
        if total_capped:
            response.headers.update(TOTAL_CAPPED)
    # One validation of plain rows (FastAPI then only checks the instance and serialises it).
    return PageOf[ListPublic].model_validate(
        {
            "items": result.items,
            "total": total,
            "page": result.page,
            "page_size": result.page_size,
        }
    )


@router.get("/{list_id}", summary="One list", responses=NOT_FOUND)
async def get_list(list_id: uuid.UUID, session: ReadSessionDep, user_id: CallerId) -> ListDetail:
    """The list with its stats and how many items sit in each bucket."""
    creator_list, buckets = await service.list_detail(session, user_id, list_id)
    return ListDetail(**ListPublic.model_validate(creator_list).model_dump(), buckets=buckets)


@router.patch("/{list_id}", summary="Update a list", responses=NOT_FOUND, dependencies=LIST_WRITES)
async def update_list(
    list_id: uuid.UUID, body: ListUpdate, session: SessionDep, user_id: CallerId
) -> ListPublic:
    """Name, description, type, privacy, tags or archived: omitted fields stay."""
    return ListPublic.model_validate(await service.update_list(session, user_id, list_id, body))


@router.delete(
    "/{list_id}",
    status_code=204,
    summary="Delete a list",
    responses=NOT_FOUND,
    dependencies=LIST_WRITES,
)
async def delete_list(list_id: uuid.UUID, session: SessionDep, user_id: CallerId) -> Response:
    """The list and all its items."""
    await service.delete_list(session, user_id, list_id)
    return Response(status_code=204)


@router.get("/{list_id}/items", summary="A page of a list's items", responses=NOT_FOUND)
async def list_items(
    list_id: uuid.UUID,
    session: ReadSessionDep,
    user_id: CallerId,
    page: PageQ = 1,
    page_size: PageSizeQ = 50,
    bucket: ListBucket | None = None,
) -> PageOf[ListItemPublic]:
    """A page of the list's items in position order, with each creator (one statement)."""
    result = await service.items_page(
        session, user_id, list_id, page=page, page_size=page_size, bucket=bucket
    )
    items = [
        ListItemPublic(
            id=item.id,
            creator_id=item.creator_id,
            platform=item.platform,
            external_id=item.external_id,
            handle=item.handle,
            display_name=item.display_name,
            followers=item.followers,
            engagement_rate=item.engagement_rate,
            email=item.email,
            position=item.position,
            bucket=item.bucket,
            notes=item.notes,
            pinned=item.pinned,
            added_at=item.added_at,
        )
        for item in result.items
    ]
    return PageOf[ListItemPublic](
        items=items, total=result.total, page=result.page, page_size=result.page_size
    )


@raises(DependencyUnavailable)
async def results_client(request: Request) -> ResultsClient:
    """Scraping's results, asked on this process's NATS link (no connection: 503). ``async``
    so FastAPI calls it in place (a plain ``def`` dependency runs in its thread pool)."""
    return ResultsClient(request.app.state.nats.nc, request.app.state.settings.scout_nats_prefix)


@router.post(
    "/{list_id}/items",
    summary="Add creators, or a search job's results",
    responses=error_responses(ListNotFound, JobNotFound, QueryTooShort),
    dependencies=[*LIST_WRITES, IDEMPOTENT],
)
async def add_items(
    list_id: uuid.UUID,
    body: ItemsAdd,
    session: SessionDep,
    reads: ReadSessionDep,
    user_id: CallerId,
    results: Annotated[ResultsClient, Depends(results_client)],
) -> ItemsAdded | ItemsAddedFromJob:
    """Add up to 500 creators (``items``) in one transaction, deduped within the request and
    against the list; ``skipped`` counts both kinds of duplicate. With ``from_job`` the
    creators come from one of your search jobs as they were stored: ``creator_keys`` (1 to 500)
    or ``all: true`` with the results filters (``min_followers``, ``max_followers``,
    ``verified``, ``has_email``, ``q``, ``sort``; the first 5,000, ``truncated`` beyond); keys
    the job lacks come back in ``missing``. Another user's job is 404 ``job_not_found``; a
    ``q`` the results page refuses is 422 ``query_too_short``; 503 when the search service
    cannot be asked (nothing is added)."""
    if body.from_job is not None:
        added = await service.add_from_job(session, reads, results, user_id, list_id, body.from_job)
        return ItemsAddedFromJob(**added)
    assert body.items is not None
    return ItemsAdded(**await service.add_items(session, reads, user_id, list_id, body.items))


@router.patch(
    "/{list_id}/items", summary="Change items", responses=NOT_FOUND, dependencies=LIST_WRITES
)
async def update_items(
    list_id: uuid.UUID, body: ItemsUpdate, session: SessionDep, user_id: CallerId
) -> ItemsUpdated:
    """Change position, bucket, notes or pinned of items named by id (body ``items``)."""
    return ItemsUpdated(**await service.update_items(session, user_id, list_id, body.items))


@router.delete(
    "/{list_id}/items", summary="Remove items", responses=NOT_FOUND, dependencies=LIST_WRITES
)
async def remove_items(
    list_id: uuid.UUID, body: ItemsRemove, session: SessionDep, user_id: CallerId
) -> ItemsRemoved:
    """Remove items named by id (body ``item_ids``); stats move in the same transaction."""
    return ItemsRemoved(**await service.remove_items(session, user_id, list_id, body.item_ids))


@router.get(
    "/{list_id}/export.csv",
    response_class=StreamingResponse,
    summary="Export a list as CSV",
    responses={200: {"content": {"text/csv": {}}}, **NOT_FOUND},
)
async def export_csv(
    list_id: uuid.UUID, request: Request, session: ReadSessionDep, user_id: CallerId
) -> StreamingResponse:
    """The list as CSV (header row first), streamed from a server-side cursor."""
    await service.require_list(session, user_id, list_id)
    return StreamingResponse(
        csv_chunks(request.app.state.engine, list_id),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="list-{list_id}.csv"'},
    )


@router.post(
    "/{list_id}/enrich",
    status_code=202,
    summary="Enrich a list's creators",
    responses=error_responses(
        ListNotFound, ListEmpty, ListTooLargeToEnrich, EnrichmentsLimitReached, ScrapingUnavailable
    ),
    dependencies=LIST_WRITES,
)
async def enrich_list(
    list_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    user_id: CallerId,
    operation: Idempotent,
) -> ListEnrichmentStarted:
    """Start one enrichment of the list's creators (up to 1,000) in the scraping service: each
    spends one of this month's enrichments unless it was enriched recently or fails (403
    ``enrichments_limit_reached`` when they do not fit, 503 when scraping or billing cannot be
    asked). Answers the enrichment's id; follow it with scraping's ``GET /enrichments/{id}``.
    Enriched e-mail, followers and engagement rate then show in the list's items and export."""
    settings = request.app.state.settings
    scraping = service.ScrapingClient(
        request.app.state.nats.nc, settings.scout_nats_prefix,
        timeout=settings.quota_timeout_seconds,
    )  # fmt: skip
    reply = await service.enrich_list(session, scraping, user_id, list_id, operation.id)
    return ListEnrichmentStarted(**reply.model_dump())
