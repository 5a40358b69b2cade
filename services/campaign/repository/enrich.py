"""The SQL of list enrichment: a list's creators, and applying an enriched profile."""

import uuid
from decimal import Decimal
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

# The enriched profile lands in ``metadata.enrichment`` (read by list items and the export);
# engagement rate and category, which no list statistic sums, go to their columns too.
# ``followers`` stays the snapshot the lists' follower_sum was built from (an existing row's is
# never changed, so list statistics stay exact). An older profile never replaces a newer one
# (events of two enrichments may arrive in either order). A creator no list holds yet gets a
# row, so adding it later shows its enriched data at once.
_APPLY = sa.text("""
INSERT INTO creator_profiles
    (platform, external_id, handle, followers, engagement_rate, category, metadata)
VALUES (:platform, :external_id, :handle, :followers, :engagement_rate, :category,
        jsonb_build_object('enrichment', CAST(:enrichment AS jsonb)))
ON CONFLICT (platform, external_id) DO UPDATE SET
    engagement_rate = coalesce(EXCLUDED.engagement_rate, creator_profiles.engagement_rate),
    category = coalesce(EXCLUDED.category, creator_profiles.category),
    metadata = creator_profiles.metadata
        || jsonb_build_object('enrichment', EXCLUDED.metadata->'enrichment')
WHERE creator_profiles.metadata->'enrichment'->>'enriched_at' IS NULL
   OR (creator_profiles.metadata->'enrichment'->>'enriched_at')::timestamptz
      <= (EXCLUDED.metadata->'enrichment'->>'enriched_at')::timestamptz
RETURNING id
""")

# A list's creators in position order (``limit`` + 1 rows tell "too many" apart).
_LIST_CREATORS = sa.text("""
SELECT p.platform, p.external_id, p.handle
FROM list_items i JOIN creator_profiles p ON p.id = i.creator_id
WHERE i.list_id = :list_id
ORDER BY i.position, i.id
LIMIT :limit
""")

MAX_ENGAGEMENT = Decimal("999.9999")  # the column's numeric(7, 4)


class EnrichRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def apply(
        self, platform: str, external_id: str, handle: str, enrichment: dict[str, Any]
    ) -> uuid.UUID | None:
        """Upsert the creator's enriched data; None when a newer one is already there."""
        rate = enrichment.get("engagement_rate")
        return await self.session.scalar(
            _APPLY,
            {
                "platform": platform,
                "external_id": external_id,
                "handle": handle,
                "followers": enrichment.get("followers"),
                "engagement_rate": None
                if rate is None
                else min(MAX_ENGAGEMENT, Decimal(str(rate)).quantize(Decimal("0.0001"))),
                "category": enrichment.get("category"),
                "enrichment": orjson.dumps(enrichment).decode(),
            },
        )

    async def list_creators(self, list_id: uuid.UUID, limit: int) -> list[dict[str, str]]:
        rows = await self.session.execute(_LIST_CREATORS, {"list_id": list_id, "limit": limit})
        return [row._asdict() for row in rows]
