"""``GET /dashboard``: the caller's overview in ONE SQL statement whatever their data size
(aggregated where the rows are, never by loading every job of the window into the process).

Reads scraping's jobs and the shared event trail directly: reads across services are allowed,
writes are not. Each part uses an index: campaigns (user_id, status, created_at), scraping_jobs
(user_id, created_at), list_items (list_id, bucket), events (user_id, occurred_at).
"""

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

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

_campaign_counts = ", ".join(
    f"'{s.value}', count(*) FILTER (WHERE status = '{s.value}')" for s in CampaignStatus
)

_OVERVIEW = sa.text(f"""
SELECT
  (SELECT json_build_object('total', count(*), {_campaign_counts})
     FROM campaigns WHERE user_id = :user_id AND deleted_at IS NULL) AS campaigns,
  (SELECT json_build_object(
            'searches', count(*),
            'completed', count(*) FILTER (WHERE status = 'completed'),
            'creators', coalesce(sum(processed_results), 0))
     FROM scraping_jobs
     WHERE user_id = :user_id AND created_at >= now() - make_interval(days => :days)) AS searches,
  (SELECT count(*) FROM creator_lists WHERE user_id = :user_id) AS lists,
  (SELECT coalesce(json_object_agg(bucket, n), '{{}}'::json) FROM (
      SELECT li.bucket, count(*) AS n
      FROM list_items li JOIN creator_lists l ON l.id = li.list_id
      WHERE l.user_id = :user_id AND NOT l.is_archived
      GROUP BY li.bucket) b) AS pipeline,
  (SELECT coalesce(json_agg(a ORDER BY a.occurred_at DESC), '[]'::json) FROM (
      SELECT type, aggregate_type, aggregate_id, occurred_at, data
      FROM events
      WHERE user_id = :user_id AND type = ANY(:types)
      ORDER BY occurred_at DESC
      LIMIT :recent) a) AS recent
""")


class DashboardRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def overview(self, user_id: uuid.UUID) -> dict[str, Any]:
        """Campaigns by status, searches and creators of the last 30 days, lists, the pipeline
        by bucket and recent activity: the ``Dashboard`` fields."""
        params = {
            "user_id": user_id,
            "days": WINDOW_DAYS,
            "types": list(ACTIVITY_TYPES),
            "recent": RECENT_ACTIVITY,
        }
        row = (await self.session.execute(_OVERVIEW, params)).one()
        pipeline = {bucket.value: 0 for bucket in ListBucket}
        pipeline.update(row.pipeline)
        pipeline["total"] = sum(row.pipeline.values())
        return {
            "campaigns": row.campaigns,
            "searches_last_30_days": row.searches["searches"],
            "searches_completed_last_30_days": row.searches["completed"],
            "creators_found_last_30_days": int(row.searches["creators"]),
            "lists": row.lists,
            "pipeline": pipeline,
            "recent_activity": row.recent,
        }
