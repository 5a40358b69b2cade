"""Every SQL statement about campaigns: the listing, reads, lifecycle writes, the sweep, the
user purge, and the per-campaign summary of scraping's jobs (read, never written)."""

import uuid
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import DriverQuery
from shared.models import Campaign, CampaignUserStats, CreatorList, ScrapingJob
from shared.models.enums import CampaignStatus, JobStatus
from shared.queries.pagination import Page, PageQuery, newest_first

# What a listing shows of a campaign (CampaignPublic), fetched as plain rows: no ORM objects.
LISTING_COLUMNS = (
    Campaign.id,
    Campaign.name,
    Campaign.description,
    Campaign.search_type,
    Campaign.status,
    Campaign.created_at,
    Campaign.updated_at,
)
LISTING_FIELDS = tuple(c.key for c in LISTING_COLUMNS)


def _listing(status: str | None, *columns: Any, driver: bool = False) -> PageQuery:
    """The live campaigns of a user (of one status), newest first, built once (the user is a
    bind parameter). Campaigns whose deletion has started are gone as far as listings go. The
    page is a deferred join on ``ix_campaigns_user_id_live_newest`` (see ``PageQuery``'s key);
    the total is the user's maintained counter (``campaign_user_stats``, kept by triggers in
    the same transaction as the campaigns), so a page costs the same at 10 or 100k campaigns."""
    user = sa.bindparam("user_id", type_=sa.Uuid)
    stmt = sa.select(*columns).where(Campaign.user_id == user, Campaign.deleted_at.is_(None))
    if status is not None:
        stmt = stmt.where(Campaign.status == status)
    counter = getattr(CampaignUserStats, status or "campaigns")
    total = sa.func.coalesce(
        sa.select(counter).where(CampaignUserStats.user_id == user).scalar_subquery(), 0
    )
    return PageQuery.build(
        stmt, order_by=newest_first(Campaign), key=Campaign.id, total=total, driver=driver
    )


# Plain rows on the driver path (GET /campaigns is the hottest campaign read).
_PAGES = {s: _listing(s, *LISTING_COLUMNS, driver=True) for s in (None, *CampaignStatus)}
# What ``include=jobs`` shows of a job (CampaignJob), as plain rows: no ORM objects.
JOB_COLUMNS = (
    ScrapingJob.id,
    ScrapingJob.platform,
    ScrapingJob.search_type,
    ScrapingJob.keywords,
    ScrapingJob.status,
    ScrapingJob.progress,
    ScrapingJob.processed_results,
    ScrapingJob.target_results,
    ScrapingJob.created_at,
)
JOB_FIELDS = tuple(c.key for c in JOB_COLUMNS)
# GET /campaigns?include=jobs: the page (``_PAGES``), then every job of its campaigns in ONE
# statement through ``ix_scraping_jobs_campaign_id_created_at``, newest first per campaign (the
# runner state, search_params, is not read).
_PAGE_JOBS = DriverQuery(
    sa.select(ScrapingJob.campaign_id, *JOB_COLUMNS)
    .where(
        ScrapingJob.campaign_id
        == sa.any_(sa.bindparam("campaign_ids", type_=postgresql.ARRAY(sa.Uuid)))
    )
    .order_by(ScrapingJob.campaign_id, ScrapingJob.created_at.desc(), ScrapingJob.id.desc())
)

# A campaign's searches summarised in one statement: jobs by status, total, creators found.
_JOB_SUMMARY = sa.select(
    sa.func.count().label("total"),
    sa.func.coalesce(sa.func.sum(ScrapingJob.processed_results), 0).label("processed"),
    *(
        sa.func.count().filter(ScrapingJob.status == status).label(status.value)
        for status in JobStatus
    ),
).where(ScrapingJob.campaign_id == sa.bindparam("campaign_id", type_=sa.Uuid))


_JOB_SUMMARY_DRIVER = DriverQuery(_JOB_SUMMARY)


@dataclass(frozen=True, slots=True)
class JobSummary:
    total: int = 0
    processed_results: int = 0
    by_status: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys((s.value for s in JobStatus), 0)
    )


class CampaignRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, campaign: Campaign) -> Campaign:
        self.session.add(campaign)
        await self.session.flush()
        return campaign

    async def page(
        self, user_id: uuid.UUID, *, page: int, page_size: int, status: str | None = None
    ) -> Page[dict[str, Any]]:
        """A page of the user's campaigns as dicts of ``LISTING_FIELDS`` (with the total)."""
        query = _PAGES[status]
        result = await query.run(self.session, {"user_id": user_id}, page=page, page_size=page_size)
        items = [dict(zip(LISTING_FIELDS, row, strict=True)) for row in result.items]
        return replace(result, items=items)

    async def page_with_jobs(
        self, user_id: uuid.UUID, *, page: int, page_size: int, status: str | None = None
    ) -> Page[dict[str, Any]]:
        """``page`` with each campaign's ``jobs`` (dicts of ``JOB_FIELDS``, newest first): two
        statements for any page size and any number of jobs (the page with its total, then
        every job of the page)."""
        found = await self.page(user_id, page=page, page_size=page_size, status=status)
        if not found.items:
            return found
        jobs: dict[uuid.UUID, list[dict[str, Any]]] = {c["id"]: [] for c in found.items}
        rows = await _PAGE_JOBS.all(self.session, {"campaign_ids": list(jobs)})
        for campaign_id, *job in rows:
            jobs[campaign_id].append(dict(zip(JOB_FIELDS, job, strict=True)))
        return replace(found, items=[{**c, "jobs": jobs[c["id"]]} for c in found.items])

    async def get(
        self, user_id: uuid.UUID, campaign_id: uuid.UUID, *, for_update: bool = False
    ) -> Campaign | None:
        """A live campaign of this user; another user's (or a deleted one) is ``None``."""
        stmt = sa.select(Campaign).where(
            Campaign.id == campaign_id,
            Campaign.user_id == user_id,
            Campaign.deleted_at.is_(None),
        )
        if for_update:
            stmt = stmt.with_for_update()
        return await self.session.scalar(stmt)

    async def update(self, campaign: Campaign, changes: dict[str, Any]) -> None:
        """Apply ``changes`` (one UPDATE) and reload ``updated_at``, which a trigger sets."""
        for key, value in changes.items():
            setattr(campaign, key, value)
        await self.session.flush()
        await self.session.refresh(campaign)

    async def job_summary(self, campaign_id: uuid.UUID) -> JobSummary:
        """The campaign's jobs by status, their total and SUM(processed_results): one statement
        however many jobs it has (zeros for a campaign without jobs)."""
        found = await _JOB_SUMMARY_DRIVER.mapping(self.session, {"campaign_id": campaign_id})
        assert found is not None  # an aggregate without GROUP BY: always one row
        return JobSummary(
            total=found["total"],
            processed_results=int(found["processed"]),
            by_status={status.value: found[status.value] for status in JobStatus},
        )

    async def mark_deleted(self, user_id: uuid.UUID, campaign_id: uuid.UUID) -> bool:
        """Start deletion (the row goes once scraping has purged its jobs); False if not ours."""
        marked = await self.session.execute(
            sa.update(Campaign)
            .where(
                Campaign.id == campaign_id,
                Campaign.user_id == user_id,
                Campaign.deleted_at.is_(None),
            )
            .values(deleted_at=sa.func.now())
            .returning(Campaign.id)
        )
        return marked.first() is not None

    async def sweep_deleted(self, grace: timedelta, limit: int = 500) -> list[uuid.UUID]:
        """Remove campaigns whose deletion started and whose jobs scraping has purged.

        Jobs belong to scraping: a campaign that still has any is left alone (its FK cascade
        would otherwise delete scraping's rows behind its back).
        """
        doomed = (
            sa.select(Campaign.id)
            .where(
                Campaign.deleted_at.is_not(None),
                Campaign.deleted_at < sa.func.now() - grace,
                ~sa.exists().where(ScrapingJob.campaign_id == Campaign.id),
            )
            .limit(limit)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        rows = await self.session.execute(
            sa.delete(Campaign).where(Campaign.id.in_(doomed)).returning(Campaign.id)
        )
        return list(rows.scalars())

    async def purge_user(self, user_id: uuid.UUID) -> tuple[int, int]:
        """Everything campaign owns of a user: lists (items cascade) go now, campaigns are
        marked and go once scraping has purged their jobs. Returns (lists, campaigns)."""
        lists = await self.session.execute(
            sa.delete(CreatorList).where(CreatorList.user_id == user_id).returning(CreatorList.id)
        )
        # FOR UPDATE, as a single deletion takes it: jobs being created for these campaigns
        # commit first (their foreign key holds the rows), so scraping's purge sees them.
        await self.session.execute(
            sa.select(Campaign.id).where(Campaign.user_id == user_id).with_for_update()
        )
        await self.session.execute(
            sa.update(Campaign)
            .where(Campaign.user_id == user_id, Campaign.deleted_at.is_(None))
            .values(deleted_at=sa.func.now())
        )
        campaigns = await self.session.execute(
            sa.delete(Campaign)
            .where(
                Campaign.user_id == user_id,
                ~sa.exists().where(ScrapingJob.campaign_id == Campaign.id),
            )
            .returning(Campaign.id)
        )
        return len(lists.all()), len(campaigns.all())
