"""Scraping-job reads: JSONB containment / key-exists (GIN-indexed) and a light status projection."""

import uuid
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import defer

from shared.models import ScrapingJob

from .pagination import newest_first

DEFAULT_LIMIT = 100


async def jobs_with_keyword(
    session: AsyncSession, user_id: uuid.UUID, keyword: str, *, limit: int = DEFAULT_LIMIT
) -> list[ScrapingJob]:
    """The user's jobs whose ``keywords`` array contains ``keyword``, newest first.

    ``keywords @> $1`` with the one-element array as a bound JSONB parameter, which the
    ``ix_scraping_jobs_keywords_gin`` (jsonb_path_ops) index answers. ``search_params`` is not
    loaded (touching it raises).
    """
    stmt = (
        sa.select(ScrapingJob)
        .options(defer(ScrapingJob.search_params, raiseload=True))
        .where(ScrapingJob.user_id == user_id, ScrapingJob.keywords.contains([keyword]))
        .order_by(*newest_first(ScrapingJob))
        .limit(limit)
    )
    return list((await session.scalars(stmt)).all())


async def jobs_with_search_param(
    session: AsyncSession, user_id: uuid.UUID, key: str, *, limit: int = DEFAULT_LIMIT
) -> list[ScrapingJob]:
    """The user's jobs whose ``search_params`` object has top-level ``key`` (``?``, GIN-indexed)."""
    stmt = (
        sa.select(ScrapingJob)
        .where(ScrapingJob.user_id == user_id, ScrapingJob.search_params.has_key(key))
        .order_by(*newest_first(ScrapingJob))
        .limit(limit)
    )
    return list((await session.scalars(stmt)).all())


class JobStatusRow(NamedTuple):
    id: uuid.UUID
    status: str
    created_at: datetime
    progress: Decimal


async def job_status_rows(
    session: AsyncSession, user_id: uuid.UUID, limit: int = DEFAULT_LIMIT
) -> list[JobStatusRow]:
    """(id, status, created_at, progress) of the user's newest jobs: no JSONB column is read."""
    stmt = (
        sa.select(ScrapingJob.id, ScrapingJob.status, ScrapingJob.created_at, ScrapingJob.progress)
        .where(ScrapingJob.user_id == user_id)
        .order_by(*newest_first(ScrapingJob))
        .limit(limit)
    )
    return [JobStatusRow(*row) for row in (await session.execute(stmt)).all()]
