"""Campaign use cases: campaigns against billing quota, their lifecycle, and lists.

Repositories flush; the request owns the transaction. Creation asks billing first:

* reserve one campaign (``shared.quota``; fail closed: billing silent → 503, nothing created),
  keyed by the campaign's id, which is the operation's id: a retried operation (the same
  ``Idempotency-Key`` taken over after a crash) finds its own hold instead of taking another;
* insert the campaign with ``campaign.campaign.created`` and a ``campaign.confirm_reservation``
  job; the request commits them together;
* once committed, confirm (``release(used_amount=1)``): reserve already counted the campaign,
  the confirm keeps it counted, and a second confirm answers the same again, so it may be
  repeated safely; ``campaign.campaign.created`` is not counted again by billing;
* if the request's transaction rolls back instead, give the hold back at once
  (``release(used_amount=0)``).

A reservation never settled (the API died between commit and confirm) would expire and be
given back although the campaign exists: the job committed with the campaign repeats the
confirm a little later (an outbox for the request/reply call; ``handlers.py``).

Lists are here; their items in ``items.py``.
"""

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import after_commit, after_rollback
from shared.events.outbox import record_event, record_user_purged
from shared.models import Campaign, CreatorList
from shared.models.enums import CampaignStatus, ListBucket, Service, UsageResource
from shared.queries.pagination import Page
from shared.quota import QuotaClient
from shared.scheduler import schedule_job

from ..errors import CampaignLimitReached, CampaignNotFound, IllegalStatusTransition, ListNotFound
from ..repository import (
    CampaignRepository,
    DashboardRepository,
    JobSummary,
    ListItemRow,
    ListRepository,
)
from ..schemas import (
    CampaignCreate,
    CampaignUpdate,
    ListCreate,
    ListUpdate,
)

SERVICE = Service.campaign
RESERVATION_TTL_SECONDS = 300
CONFIRM_JOB = "campaign.confirm_reservation"
CONFIRM_DELAY = timedelta(seconds=60)

# draft → active → completed → archived, one step at a time; archived is final.
TRANSITIONS: dict[str, frozenset[str]] = {
    CampaignStatus.draft: frozenset({CampaignStatus.active}),
    CampaignStatus.active: frozenset({CampaignStatus.completed}),
    CampaignStatus.completed: frozenset({CampaignStatus.archived}),
    CampaignStatus.archived: frozenset(),
}

PROFILE_FIELDS = (
    "platform", "external_id", "handle", "display_name", "avatar_url", "url", "followers",
    "engagement_rate", "category", "metadata",
)  # fmt: skip
ITEM_FIELDS = ("platform", "external_id", "bucket", "notes", "pinned", "metrics_snapshot",
               "custom_fields")  # fmt: skip


def reservation_key(operation: uuid.UUID) -> str:
    """Billing's idempotency key for the reservation of the campaign ``operation`` inserts."""
    return f"campaign:{operation}"


# --- campaigns ---------------------------------------------------------------------------------


async def create_campaign(
    session: AsyncSession,
    quota: QuotaClient,
    user_id: uuid.UUID,
    body: CampaignCreate,
    operation: uuid.UUID,
) -> Campaign:
    """Reserve one campaign from billing, insert it (id ``operation``) with its event; the
    reservation is confirmed once the request commits, given back if it does not.

    Exactly-at-limit under any concurrency is billing's atomic reserve; this side makes sure a
    reservation is confirmed only for a committed campaign and given back otherwise.
    """
    # End the (read-only) transaction of the user lookup: the pooled connection goes back
    # while billing is asked, instead of idling in a transaction under a burst of creates.
    await session.commit()
    reply = await quota.reserve(
        user_id,
        UsageResource.campaigns,
        1,
        key=reservation_key(operation),
        ttl_seconds=RESERVATION_TTL_SECONDS,
    )
    if not reply.allowed or reply.reservation_id is None:
        raise CampaignLimitReached(
            f"You have reached your plan's campaign limit ({reply.limit}); upgrade to add more.",
            extra={"used": reply.used, "limit": reply.limit},
        )
    reservation_id = reply.reservation_id
    after_rollback(session, lambda: quota.try_release(reservation_id, used_amount=0))
    after_commit(session, lambda: quota.try_release(reservation_id, used_amount=1))
    campaign = await CampaignRepository(session).add(
        Campaign(
            id=operation,
            user_id=user_id,
            name=body.name,
            description=body.description,
            search_type=body.search_type,
            status=CampaignStatus.draft,
        )
    )
    await _record(
        session,
        "campaign.campaign.created",
        campaign,
        {"name": campaign.name, "status": campaign.status, "search_type": campaign.search_type},
    )
    # The durable half of the confirm: committed with the campaign or not at all.
    await schedule_job(
        session,
        SERVICE,
        CONFIRM_JOB,
        {"reservation_id": str(reservation_id), "used_amount": 1},
        run_at=datetime.now(UTC) + CONFIRM_DELAY,
        dedupe_key=f"confirm:{reservation_id}",
    )
    return campaign


async def campaign_page(
    session: AsyncSession, user_id: uuid.UUID, *, page: int, page_size: int, status: str | None
) -> Page[dict[str, Any]]:
    """The caller's live campaigns, newest first, optionally of one status, with the total."""
    repo = CampaignRepository(session)
    return await repo.page(user_id, page=page, page_size=page_size, status=status)


async def campaign_page_with_jobs(
    session: AsyncSession, user_id: uuid.UUID, *, page: int, page_size: int, status: str | None
) -> Page[dict[str, Any]]:
    """``campaign_page`` with each campaign's jobs, newest first (two statements for any page)."""
    repo = CampaignRepository(session)
    return await repo.page_with_jobs(user_id, page=page, page_size=page_size, status=status)


async def campaign_detail(
    session: AsyncSession, user_id: uuid.UUID, campaign_id: uuid.UUID
) -> tuple[Campaign, JobSummary]:
    """One of the caller's campaigns with its searches summarised (two statements)."""
    repo = CampaignRepository(session)
    campaign = await repo.get(user_id, campaign_id)
    if campaign is None:
        raise CampaignNotFound()
    return campaign, await repo.job_summary(campaign.id)


async def update_campaign(
    session: AsyncSession, user_id: uuid.UUID, campaign_id: uuid.UUID, body: CampaignUpdate
) -> Campaign:
    """Apply the fields sent; a status change must be the next step of the lifecycle (409)."""
    repo = CampaignRepository(session)
    # Row lock: two concurrent transitions from the same status cannot both succeed.
    campaign = await repo.get(user_id, campaign_id, for_update=True)
    if campaign is None:
        raise CampaignNotFound()
    fields = body.model_dump(exclude_unset=True)
    if "status" in fields:
        new = fields["status"]
        if new == campaign.status:
            del fields["status"]
        elif new not in TRANSITIONS[campaign.status]:
            allowed = sorted(TRANSITIONS[campaign.status]) or ["none"]
            raise IllegalStatusTransition(
                f"A {campaign.status} campaign cannot become {new}; next: {', '.join(allowed)}."
            )
    changes: dict[str, Any] = {k: v for k, v in fields.items() if getattr(campaign, k) != v}
    if not changes:
        return campaign
    await repo.update(campaign, changes)
    await _record(
        session,
        "campaign.campaign.updated",
        campaign,
        {
            "changes": {k: str(v) if v is not None else None for k, v in changes.items()},
            "status": campaign.status,
        },
    )
    return campaign


async def delete_campaign(
    session: AsyncSession, user_id: uuid.UUID, campaign_id: uuid.UUID
) -> None:
    """Soft-delete now (gone from every read), announce it; scraping purges the jobs on the
    event and the worker's sweep removes the row once they are gone.

    The row is taken ``FOR UPDATE`` first: that waits for any job being created for the
    campaign (the job's foreign key holds the row ``FOR KEY SHARE`` until it commits), so the
    job is committed before this deletion is announced and scraping's purge sees it; a job
    insert that comes after waits for this commit and then finds the campaign deleted.
    """
    repo = CampaignRepository(session)
    if await repo.get(user_id, campaign_id, for_update=True) is None:
        raise CampaignNotFound()
    await repo.mark_deleted(user_id, campaign_id)
    await record_event(
        session,
        service=SERVICE,
        type="campaign.campaign.deleted",
        aggregate_type="campaign",
        aggregate_id=campaign_id,
        user_id=user_id,
        data={"campaign_id": campaign_id, "user_id": user_id},
    )


async def sweep_deleted(session: AsyncSession, grace: timedelta) -> int:
    """Remove campaigns whose deletion started ``grace`` ago and whose jobs scraping has purged
    (a campaign that still has jobs is left for a later sweep); how many went."""
    return len(await CampaignRepository(session).sweep_deleted(grace))


async def purge_user(
    session: AsyncSession, user_id: uuid.UUID, clerk_user_id: str
) -> tuple[int, int]:
    """The user is being deleted: their lists go now (items cascade), their campaigns are marked
    deleted and go once scraping has purged their jobs (or with the ``users`` row, which waits
    for scraping's acknowledgement too). ``campaign.user.purged`` in the same transaction tells
    identity campaign's step is done. Returns (lists, campaigns removed)."""
    purged = await CampaignRepository(session).purge_user(user_id)
    await record_user_purged(session, service=SERVICE, user_id=user_id, clerk_user_id=clerk_user_id)
    return purged


async def _record(session: AsyncSession, type: str, campaign: Campaign, data: dict) -> None:
    await record_event(
        session,
        service=SERVICE,
        type=type,
        aggregate_type="campaign",
        aggregate_id=campaign.id,
        user_id=campaign.user_id,
        data={"campaign_id": campaign.id, "user_id": campaign.user_id, **data},
    )


async def dashboard(session: AsyncSession, user_id: uuid.UUID) -> dict[str, Any]:
    """The caller's overview, computed in SQL in one statement."""
    return await DashboardRepository(session).overview(user_id)


# --- lists -------------------------------------------------------------------------------------


async def owned_list(
    session: AsyncSession, user_id: uuid.UUID, list_id: uuid.UUID, *, lock: bool = False
) -> CreatorList:
    """The caller's list (another user's is 404); ``lock`` serialises item writes to it."""
    creator_list = await ListRepository(session).get(user_id, list_id, for_update=lock)
    if creator_list is None:
        raise ListNotFound()
    return creator_list


async def require_list(
    session: AsyncSession, user_id: uuid.UUID, list_id: uuid.UUID, *, lock: bool = False
) -> None:
    """:func:`owned_list` for a caller that needs only to know the list is theirs (one
    statement, no ORM object): 404 ``list_not_found`` otherwise."""
    if not await ListRepository(session).hold(user_id, list_id, lock=lock):
        raise ListNotFound()


async def create_list(session: AsyncSession, user_id: uuid.UUID, body: ListCreate) -> CreatorList:
    return await ListRepository(session).add(CreatorList(user_id=user_id, **body.model_dump()))


async def list_page(
    session: AsyncSession,
    user_id: uuid.UUID,
    *,
    page: int,
    page_size: int,
    archived: bool | None,
    tags: Sequence[str] = (),
    any_tags: Sequence[str] = (),
) -> Page[dict[str, Any]]:
    """The caller's lists, most recently changed first, with their (always current) stats;
    optionally those holding every tag of ``tags`` and one of ``any_tags``."""
    repo = ListRepository(session)
    return await repo.page(
        user_id, page=page, page_size=page_size, archived=archived, tags=tags, any_tags=any_tags
    )


async def list_detail(
    session: AsyncSession, user_id: uuid.UUID, list_id: uuid.UUID
) -> tuple[CreatorList, dict[str, int]]:
    """The caller's list and how many of its items sit in each bucket."""
    creator_list = await owned_list(session, user_id, list_id)
    buckets = {b.value: 0 for b in ListBucket}
    buckets.update(await ListRepository(session).bucket_counts(list_id))
    return creator_list, buckets


async def update_list(
    session: AsyncSession, user_id: uuid.UUID, list_id: uuid.UUID, body: ListUpdate
) -> CreatorList:
    creator_list = await owned_list(session, user_id, list_id, lock=True)
    fields = body.model_dump(exclude_unset=True)
    if fields:
        await ListRepository(session).update(creator_list, fields)
    return creator_list


async def delete_list(session: AsyncSession, user_id: uuid.UUID, list_id: uuid.UUID) -> None:
    await ListRepository(session).delete(await owned_list(session, user_id, list_id))


async def items_page(
    session: AsyncSession,
    user_id: uuid.UUID,
    list_id: uuid.UUID,
    *,
    page: int,
    page_size: int,
    bucket: str | None,
) -> Page[ListItemRow]:
    """A page of the caller's list in position order with each creator (one statement)."""
    found = await ListRepository(session).items_page(
        user_id, list_id, page=page, page_size=page_size, bucket=bucket
    )
    if found is None:
        raise ListNotFound()
    return found
