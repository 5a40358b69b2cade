"""Every SQL statement about enrichments, their items and the stored enriched profiles."""

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from shared.models import (
    CreatorEnrichment,
    Enrichment,
    EnrichmentItem,
)


class ItemView(NamedTuple):
    """An item of an enrichment with the creator's stored profile (if any)."""

    position: int
    platform: str
    external_id: str
    handle: str
    status: str
    error: str | None
    profile: dict[str, Any] | None
    enriched_at: datetime | None


_PROFILE_KEY = sa.tuple_(CreatorEnrichment.platform, CreatorEnrichment.external_id)

# Every item with the creator's stored profile, in request order (one statement).
_ITEMS = (
    sa.select(
        EnrichmentItem.position,
        EnrichmentItem.platform,
        EnrichmentItem.external_id,
        EnrichmentItem.handle,
        EnrichmentItem.status,
        EnrichmentItem.error,
        CreatorEnrichment.profile,
        CreatorEnrichment.enriched_at,
    )
    .outerjoin(
        CreatorEnrichment,
        sa.and_(
            CreatorEnrichment.platform == EnrichmentItem.platform,
            CreatorEnrichment.external_id == EnrichmentItem.external_id,
        ),
    )
    .where(EnrichmentItem.enrichment_id == sa.bindparam("enrichment_id"))
    .order_by(EnrichmentItem.position)
)


class EnrichmentRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # --- enrichments ---------------------------------------------------------------------

    async def add(self, enrichment: Enrichment, items: list[dict[str, Any]]) -> Enrichment:
        """Insert the enrichment and its items (one statement for the items)."""
        self.session.add(enrichment)
        await self.session.flush()
        rows = [{**item, "enrichment_id": enrichment.id} for item in items]
        await self.session.execute(sa.insert(EnrichmentItem), rows)
        return enrichment

    async def get(
        self, enrichment_id: uuid.UUID, *, user_id: uuid.UUID | None = None
    ) -> Enrichment | None:
        stmt = sa.select(Enrichment).where(Enrichment.id == enrichment_id)
        if user_id is not None:
            stmt = stmt.where(Enrichment.user_id == user_id)
        return await self.session.scalar(stmt)

    async def lock(self, enrichment_id: uuid.UUID) -> Enrichment | None:
        """The enrichment under its row lock: every count change of its items is serialised."""
        stmt = (
            sa.select(Enrichment)
            .where(Enrichment.id == enrichment_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return await self.session.scalar(stmt)

    async def items(self, enrichment_id: uuid.UUID) -> list[ItemView]:
        rows = await self.session.execute(_ITEMS, {"enrichment_id": enrichment_id})
        return [ItemView(*row) for row in rows.all()]

    async def item(self, enrichment_id: uuid.UUID, position: int) -> EnrichmentItem | None:
        return await self.session.scalar(
            sa.select(EnrichmentItem)
            .where(
                EnrichmentItem.enrichment_id == enrichment_id,
                EnrichmentItem.position == position,
            )
            .execution_options(populate_existing=True)
        )

    async def set_items(
        self, enrichment_id: uuid.UUID, positions: Sequence[int], status: str,
        error: str | None = None,
    ) -> None:  # fmt: skip
        await self.session.execute(
            sa.update(EnrichmentItem)
            .where(
                EnrichmentItem.enrichment_id == enrichment_id,
                EnrichmentItem.position.in_(list(positions)),
            )
            .values(status=status, error=error)
        )

    async def overdue(self, created_before: datetime, limit: int) -> list[uuid.UUID]:
        """Live (pending or processing) enrichments created before ``created_before``."""
        rows = await self.session.scalars(
            sa.select(Enrichment.id)
            .where(
                Enrichment.status.in_(["pending", "processing"]),
                Enrichment.created_at < created_before,
            )
            .order_by(Enrichment.created_at)
            .limit(limit)
        )
        return list(rows)

    async def fail_pending(self, enrichment_id: uuid.UUID, error: str) -> int:
        """Every still-pending item of the enrichment fails with ``error``; returns how many."""
        result = await self.session.execute(
            sa.update(EnrichmentItem)
            .where(
                EnrichmentItem.enrichment_id == enrichment_id,
                EnrichmentItem.status == "pending",
            )
            .values(status="failed", error=error)
        )
        return result.rowcount

    async def delete_for_user(self, user_id: uuid.UUID) -> int:
        result = await self.session.execute(
            sa.delete(Enrichment).where(Enrichment.user_id == user_id)
        )
        return result.rowcount

    # --- profiles ------------------------------------------------------------------------

    async def fresh_profiles(
        self, keys: Sequence[tuple[str, str]], since: datetime
    ) -> dict[tuple[str, str], CreatorEnrichment]:
        """Stored profiles of ``keys`` enriched at or after ``since``, by (platform, external id)."""
        if not keys:
            return {}
        rows = await self.session.scalars(
            sa.select(CreatorEnrichment).where(
                _PROFILE_KEY.in_(list(keys)), CreatorEnrichment.enriched_at >= since
            )
        )
        return {(p.platform, p.external_id): p for p in rows}

    async def profile(self, platform: str, external_id: str) -> CreatorEnrichment | None:
        return await self.session.scalar(
            sa.select(CreatorEnrichment).where(
                CreatorEnrichment.platform == platform,
                CreatorEnrichment.external_id == external_id,
            )
        )

    async def store_profile(
        self, platform: str, external_id: str, handle: str, profile: dict[str, Any],
        enriched_at: datetime,
    ) -> uuid.UUID:  # fmt: skip
        """Insert or replace the creator's profile (the latest fetch wins); returns its id."""
        stmt = insert(CreatorEnrichment).values(
            platform=platform, external_id=external_id, handle=handle, profile=profile,
            enriched_at=enriched_at,
        )  # fmt: skip
        stmt = stmt.on_conflict_do_update(
            index_elements=["platform", "external_id"],
            set_={
                "handle": stmt.excluded.handle,
                "profile": stmt.excluded.profile,
                "enriched_at": stmt.excluded.enriched_at,
            },
        ).returning(CreatorEnrichment.id)
        return await self.session.scalar(stmt)

    # --- a job's creators ----------------------------------------------------------------
