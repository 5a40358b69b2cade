"""Every SQL statement of the scraping service: jobs, their stored creators, the results page.

A job's creators sit in ``scraping_results`` batches of ≤ ``RESULT_BATCH_MAX`` addressed by
``first_ordinal``, so a results page touches only the batches starting in
``(offset - RESULT_BATCH_MAX, offset + limit)``, found through
``uq_scraping_results_job_id_first_ordinal``: O(page) whatever the job's size.
"""

import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from functools import cache
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import DriverQuery
from shared.models import (
    Campaign,
    ScrapingJob,
    ScrapingJobCreator,
    ScrapingJobKeyword,
    ScrapingUserDay,
)
from shared.models.enums import JobStatus
from shared.models.scraping import RESULT_BATCH_MAX
from shared.queries.pagination import InvalidPage, Page, PageQuery, capped_count, newest_first

from ..schemas import MAX_RESULTS_LIMIT

LIVE = (JobStatus.pending, JobStatus.processing)
_keys: sa.Table = ScrapingJobCreator.__table__  # type: ignore[assignment]

# The job's next batch position, from its LAST batch row (a one-row backward scan of the
# ``(job_id, first_ordinal)`` unique index), not a sum over every earlier batch.
_NEXT_POSITION = """
  next_pos AS (
    SELECT coalesce(max(batch_no) + 1, 0) AS batch_no,
           coalesce(max(first_ordinal + creator_count), 0) AS ordinal
    FROM (SELECT batch_no, first_ordinal, creator_count FROM scraping_results
          WHERE job_id = :job_id ORDER BY first_ordinal DESC LIMIT 1) AS last_batch
  )"""
# ``kept`` (creator jsonb, rn from 0 in stored order) → batch rows of ≤ RESULT_BATCH_MAX.
_INSERT_BATCHES = f"""
  batches AS (
    INSERT INTO scraping_results (job_id, batch_no, first_ordinal, creator_count, creators)
    SELECT :job_id, next_pos.batch_no + kept.rn / {RESULT_BATCH_MAX},
           next_pos.ordinal + min(kept.rn), count(*), jsonb_agg(kept.creator ORDER BY kept.rn)
    FROM kept CROSS JOIN next_pos
    GROUP BY kept.rn / {RESULT_BATCH_MAX}, next_pos.batch_no, next_pos.ordinal
    RETURNING creator_count
  )"""

# One round trip for a page of creators (``store_creators``). Every sub-statement sees the
# snapshot from before the statement, so the stored count is the keys already there (exact:
# writers hold the job lock) plus the ones this statement inserted. Each new creator's row
# takes the next job-wide ordinal (its generated filter columns come with it), and its batch
# covers the same ordinals, so both read paths agree on discovery order.
STORE_CTES = f"""
  cand AS (
    SELECT c.key, c.creator, c.ord
    FROM ROWS FROM (unnest(CAST(:keys AS varchar[])), jsonb_array_elements(CAST(:creators AS jsonb)))
         WITH ORDINALITY AS c(key, creator, ord)
  ),{_NEXT_POSITION},
  fresh AS (
    INSERT INTO scraping_job_creators (job_id, platform, creator_key, ordinal, creator)
    SELECT :job_id, :platform, n.key, next_pos.ordinal + n.rn, n.creator
    FROM (
      SELECT cand.key, cand.creator, row_number() OVER (ORDER BY cand.ord) - 1 AS rn
      FROM cand
      WHERE NOT EXISTS (  -- OFFSET 0: one index probe per candidate, never a scan of the job
        SELECT FROM scraping_job_creators AS k
        WHERE k.job_id = :job_id AND k.platform = :platform AND k.creator_key = cand.key
        OFFSET 0
      )
      ORDER BY cand.ord
      LIMIT :limit
    ) AS n CROSS JOIN next_pos
    ON CONFLICT (job_id, platform, creator_key) DO NOTHING
    RETURNING ordinal, creator
  ),
  kept AS (
    SELECT fresh.creator, fresh.ordinal - next_pos.ordinal AS rn FROM fresh CROSS JOIN next_pos
  ),{_INSERT_BATCHES},
  counts AS MATERIALIZED (
    SELECT (SELECT count(*) FROM fresh) AS added,
           (SELECT count(*) FROM scraping_job_creators WHERE job_id = :job_id)
             + (SELECT count(*) FROM fresh) AS stored
  )"""
_STORE = sa.text(f"WITH{STORE_CTES}\nSELECT added, stored FROM counts").bindparams(
    sa.bindparam("job_id", type_=sa.Uuid),
    sa.bindparam("platform", type_=sa.String),
    sa.bindparam("keys", type_=ARRAY(sa.String)),
    sa.bindparam("creators", type_=sa.String),
    sa.bindparam("limit", type_=sa.Integer),
)
# One statement finds the caller by Clerk id, checks ownership, reads the total
# (``processed_results``, counted from the dedupe rows whenever creators are stored) and slices
# the page in Postgres, so only the page's creators cross the wire — as the JSON text Postgres
# wrote, which the route sends on without parsing it. No row: no such job of this (live) user.
_RESULTS_PAGE = sa.text(
    f"""
SELECT j.processed_results AS total, p.n, p.items
FROM scraping_jobs j
JOIN users u ON u.id = j.user_id
CROSS JOIN LATERAL (
  SELECT count(*) AS n, jsonb_agg(e.value ORDER BY r.first_ordinal, e.n)::text AS items
    FROM scraping_results r
    CROSS JOIN LATERAL jsonb_array_elements(r.creators) WITH ORDINALITY AS e(value, n)
   WHERE r.job_id = j.id
     AND :offset < j.processed_results
     AND r.first_ordinal > :offset - {RESULT_BATCH_MAX}
     AND r.first_ordinal < :offset + :limit
     AND r.first_ordinal + e.n - 1 >= :offset
     AND r.first_ordinal + e.n - 1 < :offset + :limit) p
WHERE j.id = :job_id AND u.user_id = :clerk_user_id AND u.deleted_at IS NULL
"""
)
_RESULTS_PAGE_DRIVER = DriverQuery(_RESULTS_PAGE)


@dataclass(frozen=True, slots=True)
class ResultsPage:
    """An offset listing: ``{items, total, offset, limit, next_offset}``."""

    items_json: str  # the page's creators, a JSON array as Postgres wrote it
    count: int
    total: int
    offset: int
    limit: int

    @property
    def next_offset(self) -> int | None:
        end = self.offset + self.count
        return end if self.count and end < self.total else None


def validate_window(offset: int, limit: int) -> None:
    if not isinstance(offset, int) or offset < 0:
        raise InvalidPage(f"offset must be an integer >= 0, got {offset!r}.")
    if not isinstance(limit, int) or not 1 <= limit <= MAX_RESULTS_LIMIT:
        raise InvalidPage(f"limit must be between 1 and {MAX_RESULTS_LIMIT}, got {limit!r}.")


# What a jobs listing shows of a job (JobPublic), fetched as plain rows: no ORM objects, and
# never ``search_params`` (the runner state, the big JSONB).
LISTING_COLUMNS = (
    ScrapingJob.id,
    ScrapingJob.campaign_id,
    ScrapingJob.status,
    ScrapingJob.platform,
    ScrapingJob.search_type,
    ScrapingJob.keywords,
    ScrapingJob.target_username,
    ScrapingJob.region,
    ScrapingJob.target_results,
    ScrapingJob.processed_results,
    ScrapingJob.processed_runs,
    ScrapingJob.progress,
    ScrapingJob.error,
    ScrapingJob.created_at,
    ScrapingJob.started_at,
    ScrapingJob.completed_at,
    ScrapingJob.timeout_at,
)
LISTING_FIELDS = tuple(c.key for c in LISTING_COLUMNS)


@cache
def _listing(campaign: bool, status: bool, keyword: bool) -> PageQuery:
    """The user's jobs page for one combination of filters, built once (values are bind
    parameters), on the driver as plain rows. With ``keyword``, the page walks the user's
    entries of that keyword in ``scraping_job_keywords`` (newest first) and reads only the
    page's jobs. The total is capped (``capped_count``): a page never counts every match."""
    user = sa.bindparam("user_id", type_=sa.Uuid)
    stmt = sa.select(*LISTING_COLUMNS)
    if keyword:
        k = ScrapingJobKeyword
        entries = (k.user_id == user, k.keyword == sa.bindparam("keyword", type_=sa.Text))
        found = sa.select(k.job_id).where(*entries)
        stmt = stmt.join_from(k, ScrapingJob, ScrapingJob.id == k.job_id).where(*entries)
        order: tuple[sa.ColumnElement, ...] = (k.job_created_at.desc(), k.job_id.desc())
    else:
        found = None
        stmt = stmt.where(ScrapingJob.user_id == user)
        order = newest_first(ScrapingJob)
    if campaign:
        stmt = stmt.where(ScrapingJob.campaign_id == sa.bindparam("campaign_id", type_=sa.Uuid))
    if status:
        stmt = stmt.where(ScrapingJob.status == sa.bindparam("status", type_=sa.String))
    # A keyword alone is counted in its index range only (index-only), not through the jobs.
    counted = found if found is not None and not (campaign or status) else stmt
    return PageQuery.build(stmt, order_by=order, total=capped_count(counted).scalar_subquery(),
                           driver=True)  # fmt: skip


class JobRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # --- ownership -----------------------------------------------------------------------

    async def owns_campaign(self, user_id: uuid.UUID, campaign_id: uuid.UUID) -> bool:
        found = await self.session.scalar(
            sa.select(Campaign.id).where(
                Campaign.id == campaign_id,
                Campaign.user_id == user_id,
                Campaign.deleted_at.is_(None),
            )
        )
        return found is not None

    # --- jobs ----------------------------------------------------------------------------

    async def add(self, job: ScrapingJob) -> ScrapingJob:
        self.session.add(job)
        await self.session.flush()
        return job

    async def get(
        self, job_id: uuid.UUID, *, user_id: uuid.UUID | None = None
    ) -> ScrapingJob | None:
        stmt = sa.select(ScrapingJob).where(ScrapingJob.id == job_id)
        if user_id is not None:
            stmt = stmt.where(ScrapingJob.user_id == user_id)
        return await self.session.scalar(stmt)

    async def lock(
        self, job_id: uuid.UUID, *, user_id: uuid.UUID | None = None
    ) -> ScrapingJob | None:
        """The job row under ``FOR UPDATE``: serialises every state change and batch of a job."""
        stmt = sa.select(ScrapingJob).where(ScrapingJob.id == job_id).with_for_update()
        if user_id is not None:
            stmt = stmt.where(ScrapingJob.user_id == user_id)
        stmt = stmt.execution_options(populate_existing=True)
        return await self.session.scalar(stmt)

    async def page(
        self,
        user_id: uuid.UUID,
        *,
        campaign_id: uuid.UUID | None = None,
        status: str | None = None,
        keyword: str | None = None,
        page: int,
        page_size: int,
    ) -> Page[dict[str, Any]]:
        """The user's jobs as dicts of ``LISTING_FIELDS``, newest first, optionally of one
        campaign, status or keyword; ``total`` is counted up to ``COUNT_CAP + 1``
        (``capped`` says what to show)."""
        params: dict[str, Any] = {"user_id": user_id}
        if campaign_id is not None:
            params["campaign_id"] = campaign_id
        if status is not None:
            params["status"] = status
        if keyword is not None:
            params["keyword"] = keyword
        query = _listing(campaign_id is not None, status is not None, keyword is not None)
        found = await query.run(self.session, params, page=page, page_size=page_size)
        items = [dict(zip(LISTING_FIELDS, row, strict=True)) for row in found.items]
        return replace(found, items=items)

    async def overdue(self, now: datetime, limit: int) -> list[uuid.UUID]:
        """Live jobs past their deadline (partial index ``ix_scraping_jobs_timeout_at_live``)."""
        rows = await self.session.scalars(
            sa.select(ScrapingJob.id)
            .where(ScrapingJob.status.in_(LIVE), ScrapingJob.timeout_at < now)
            .order_by(ScrapingJob.timeout_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return list(rows)

    async def live_ids(self, *, user_id: uuid.UUID | None = None,
                       campaign_id: uuid.UUID | None = None) -> list[uuid.UUID]:  # fmt: skip
        stmt = sa.select(ScrapingJob.id).where(ScrapingJob.status.in_(LIVE))
        if user_id is not None:
            stmt = stmt.where(ScrapingJob.user_id == user_id)
        if campaign_id is not None:
            stmt = stmt.where(ScrapingJob.campaign_id == campaign_id)
        return list(await self.session.scalars(stmt))

    async def delete_jobs(self, *, user_id: uuid.UUID | None = None,
                          campaign_id: uuid.UUID | None = None) -> int:  # fmt: skip
        """Delete jobs (their batches and dedupe keys go by ON DELETE CASCADE)."""
        stmt = sa.delete(ScrapingJob)
        if user_id is not None:
            stmt = stmt.where(ScrapingJob.user_id == user_id)
        if campaign_id is not None:
            stmt = stmt.where(ScrapingJob.campaign_id == campaign_id)
        result = await self.session.execute(stmt)
        return result.rowcount or 0

    async def delete_user_days(self, user_id: uuid.UUID) -> None:
        """The user's search counters by day (``scraping_user_days``), once their jobs are gone."""
        await self.session.execute(
            sa.delete(ScrapingUserDay).where(ScrapingUserDay.user_id == user_id)
        )

    async def stored_count(self, job_id: uuid.UUID) -> int:
        """The DB truth of how many creators a job holds (index-only on the dedupe key)."""
        return (
            await self.session.scalar(
                sa.select(sa.func.count()).where(ScrapingJobCreator.job_id == job_id)
            )
        ) or 0

    # --- results -------------------------------------------------------------------------

    async def store_creators(
        self, job_id: uuid.UUID, platform: str, creators: list[tuple[str, dict[str, Any]]],
        limit: int,
    ) -> tuple[int, int]:  # fmt: skip
        """Store ``(creator_key, creator)`` pairs new to the job, in order, up to ``limit``.

        One statement (:data:`_STORE`): the dedupe insert into ``scraping_job_creators``, the
        bounded batch rows appended after the job's last batch, and the job's stored count.
        Returns ``(added, stored)``. Call under the job row lock: the lock serialises appends,
        so batch positions are gap-free and ``limit`` caps the job at its target; the unique
        constraints (dedupe key, ``(job_id, batch_no)``, ``(job_id, first_ordinal)``) enforce
        both regardless.
        """
        unique: dict[str, dict[str, Any]] = {}
        for key, creator in creators:
            unique.setdefault(key, creator)
        if not unique or limit <= 0:
            return 0, await self.stored_count(job_id)
        row = (
            await self.session.execute(
                _STORE,
                {
                    "job_id": job_id,
                    "platform": platform,
                    "keys": list(unique),
                    "creators": orjson.dumps(list(unique.values())).decode(),
                    "limit": limit,
                },
            )
        ).one()
        return int(row.added), int(row.stored)

    async def results_page(
        self, clerk_user_id: str, job_id: uuid.UUID, *, offset: int, limit: int
    ) -> ResultsPage | None:
        """Creators ``[offset, offset + limit)`` of the caller's job in stored order (one
        statement, caller resolved by Clerk id inside it), or None when the job does not exist
        or is another user's."""
        validate_window(offset, limit)
        params = {
            "job_id": job_id,
            "clerk_user_id": clerk_user_id,
            "offset": offset,
            "limit": limit,
        }
        row = await _RESULTS_PAGE_DRIVER.first(self.session, params)
        if row is None:
            return None
        total, count, items = row
        return ResultsPage(items or "[]", count, total, offset, limit)
