"""``GET /dashboard``: the caller's overview in ONE SQL statement.

Campaigns by status, lists and the pipeline by bucket are the user's row of
``campaign_user_stats`` (kept by triggers in the same transaction as the rows they count), so
they cost the same whatever the user owns. The searches of the last 30 days are the user's
rows of scraping's ``scraping_user_days`` in the window (one per UTC day, kept by triggers on
the jobs; reads across services are allowed, writes are not) plus the creators found so far by
the user's unfinished jobs of the window, read through ``ix_scraping_jobs_user_id_status``: the
same cost whatever the user searched before. Unfinished jobs are the last 30 minutes' (the job
timeout) and their creation is rate limited, so they are at most 900 (30 a minute), usually a
handful. The window is whole UTC days: today (UTC) and the 29 days before it. The recent
activity is the last events through ``events (user_id, occurred_at)``.
"""

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import DriverQuery
from shared.models.enums import CampaignStatus, ListBucket

WINDOW_DAYS = 30
RECENT_ACTIVITY = 10
# What "recent activity" shows: campaign facts and search milestones (progress ticks are noise).
ACTIVITY_TYPES = (
    "campaign.campaign.created",
    "campaign.campaign.updated",
    "campaign.campaign.deleted",
    "scraping.job.created",
    "scraping.job.completed",
    "scraping.job.failed",
    "scraping.job.timed_out",
    "scraping.job.cancelled",
)

_STATS_COLUMNS = ", ".join(f"s.{c}" for c in ("campaigns", *CampaignStatus, "lists", *ListBucket))

# Everything a user owns in campaign comes from the user's one counters row (zeros when there
# is none); the searches of the window from the user's day rows and unfinished jobs; the last
# events where they live. ``first_day``: the window's first UTC day. The unfinished jobs are
# found by (user, status) alone, never by the window, so no plan walks the user's window.
_OVERVIEW = sa.text(f"""
WITH w AS (SELECT (now() AT TIME ZONE 'UTC')::date - (:days - 1) AS first_day)
SELECT {_STATS_COLUMNS},
  (SELECT json_build_object(
            'searches', coalesce(sum(d.searches), 0),
            'completed', coalesce(sum(d.completed), 0),
            'creators', coalesce(sum(d.creators), 0) + (
               SELECT coalesce(sum(j.processed_results)
                   FILTER (WHERE j.created_at >= w.first_day::timestamp AT TIME ZONE 'UTC'), 0)
               FROM scraping_jobs j
               WHERE j.user_id = :user_id AND j.status IN ('pending', 'processing')))
     FROM scraping_user_days d
     WHERE d.user_id = :user_id AND d.day >= w.first_day) AS searches,
  (SELECT coalesce(json_agg(a ORDER BY a.occurred_at DESC), '[]'::json) FROM (
      SELECT type, aggregate_type, aggregate_id, occurred_at, data
      FROM events
      WHERE user_id = :user_id AND type = ANY(:types)
      ORDER BY occurred_at DESC
      LIMIT :recent) a) AS recent
FROM w
LEFT JOIN campaign_user_stats s ON s.user_id = :user_id
""")


_OVERVIEW_DRIVER = DriverQuery(_OVERVIEW)


class DashboardRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def overview(self, user_id: uuid.UUID) -> dict[str, Any]:
        """Campaigns by status, searches and creators of the last 30 UTC days (today
        included), lists, the pipeline by bucket and recent activity: the ``Dashboard`` fields."""
        params = {
            "user_id": user_id,
            "days": WINDOW_DAYS,
            "types": list(ACTIVITY_TYPES),
            "recent": RECENT_ACTIVITY,
        }
        row = await _OVERVIEW_DRIVER.mapping(self.session, params)
        assert row is not None  # one row always (LEFT JOIN from the one-row window)
        campaigns = {"total": row["campaigns"] or 0}
        campaigns |= {status.value: row[status.value] or 0 for status in CampaignStatus}
        pipeline = {bucket.value: row[bucket.value] or 0 for bucket in ListBucket}
        pipeline["total"] = sum(pipeline.values())
        return {
            "campaigns": campaigns,
            "searches_last_30_days": row["searches"]["searches"],
            "searches_completed_last_30_days": row["searches"]["completed"],
            "creators_found_last_30_days": int(row["searches"]["creators"]),
            "lists": row["lists"] or 0,
            "pipeline": pipeline,
            "recent_activity": row["recent"],
        }
