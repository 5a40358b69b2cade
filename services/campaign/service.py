"""Campaign domain logic: creation against billing quota, status transitions, deletion.

Repositories flush; the request owns the transaction. The one exception is creation, which
must know its insert committed before it confirms the reservation with billing.
"""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from shared.errors import Conflict, NotFound
from shared.events.outbox import record_event
from shared.models import Campaign
from shared.models.enums import CampaignStatus, Service
from shared.scheduler import schedule_job

from . import quota
from .repository import CampaignRepository
from .schemas import CampaignCreate, CampaignUpdate

SERVICE = Service.campaign
CONFIRM_DELAY = timedelta(seconds=60)

# draft → active → completed → archived, one step at a time; archived is final.
TRANSITIONS: dict[str, frozenset[str]] = {
    CampaignStatus.draft: frozenset({CampaignStatus.active}),
    CampaignStatus.active: frozenset({CampaignStatus.completed}),
    CampaignStatus.completed: frozenset({CampaignStatus.archived}),
    CampaignStatus.archived: frozenset(),
}


def campaign_not_found() -> NotFound:
    return NotFound("No such campaign.", code="campaign_not_found")


async def create_campaign(
    request: Request, session: AsyncSession, user_id: uuid.UUID, body: CampaignCreate
) -> Campaign:
    """Reserve one campaign from billing, insert it with its event, then confirm the reservation.

    Exactly-at-limit under any concurrency is billing's atomic reserve; this side makes sure a
    reservation is confirmed only for a committed campaign and given back otherwise.
    """
    campaign_id = uuid.uuid4()
    # End the (read-only) transaction of the user lookup: the pooled connection goes back
    # while billing is asked, instead of idling in a transaction under a burst of creates.
    await session.commit()
    reservation = await quota.reserve_campaign(request, user_id, campaign_id)
    reservation_id = reservation.reservation_id
    assert reservation_id is not None  # reserve_campaign raises otherwise
    try:
        campaign = await CampaignRepository(session).add(
            Campaign(
                id=campaign_id,
                user_id=user_id,
                name=body.name,
                description=body.description,
                search_type=body.search_type,
                status=CampaignStatus.draft,
            )
        )
        await record_event(
            session,
            service=SERVICE,
            type="campaign.campaign.created",
            aggregate_type="campaign",
            aggregate_id=campaign.id,
            user_id=user_id,
            data={
                "campaign_id": campaign.id,
                "user_id": user_id,
                "name": campaign.name,
                "status": campaign.status,
                "search_type": campaign.search_type,
            },
        )
        # The durable half of the confirm (see quota): committed with the campaign or not at all.
        await schedule_job(
            session,
            SERVICE,
            quota.CONFIRM_JOB,
            {"reservation_id": str(reservation_id), "used_amount": 1},
            run_at=datetime.now(UTC) + CONFIRM_DELAY,
            dedupe_key=f"confirm:{reservation_id}",
        )
        await session.commit()
    except BaseException:
        await session.rollback()
        await quota.release(request, reservation_id, used_amount=0)
        raise
    await quota.release(request, reservation_id, used_amount=1)
    return campaign


async def update_campaign(
    session: AsyncSession, user_id: uuid.UUID, campaign_id: uuid.UUID, body: CampaignUpdate
) -> Campaign:
    """Apply the fields sent; a status change must be the next step of the lifecycle (409)."""
    repo = CampaignRepository(session)
    # Row lock: two concurrent transitions from the same status cannot both succeed.
    campaign = await repo.get(user_id, campaign_id, for_update=True)
    if campaign is None:
        raise campaign_not_found()
    fields = body.model_dump(exclude_unset=True)
    if "status" in fields:
        new = fields["status"]
        if new == campaign.status:
            del fields["status"]
        elif new not in TRANSITIONS[campaign.status]:
            allowed = sorted(TRANSITIONS[campaign.status]) or ["none"]
            raise Conflict(
                f"A {campaign.status} campaign cannot become {new}; next: {', '.join(allowed)}.",
                code="illegal_status_transition",
            )
    changes: dict[str, Any] = {k: v for k, v in fields.items() if getattr(campaign, k) != v}
    if not changes:
        return campaign
    for key, value in changes.items():
        setattr(campaign, key, value)
    await session.flush()
    await session.refresh(campaign)  # updated_at comes from the trigger
    await record_event(
        session,
        service=SERVICE,
        type="campaign.campaign.updated",
        aggregate_type="campaign",
        aggregate_id=campaign.id,
        user_id=user_id,
        data={
            "campaign_id": campaign.id,
            "user_id": user_id,
            "changes": {k: str(v) if v is not None else None for k, v in changes.items()},
            "status": campaign.status,
        },
    )
    return campaign


async def delete_campaign(
    session: AsyncSession, user_id: uuid.UUID, campaign_id: uuid.UUID
) -> None:
    """Soft-delete now (gone from every read), announce it; scraping purges the jobs on the
    event and the worker's sweep removes the row once they are gone."""
    if not await CampaignRepository(session).mark_deleted(user_id, campaign_id):
        raise campaign_not_found()
    await record_event(
        session,
        service=SERVICE,
        type="campaign.campaign.deleted",
        aggregate_type="campaign",
        aggregate_id=campaign_id,
        user_id=user_id,
        data={"campaign_id": campaign_id, "user_id": user_id},
    )
