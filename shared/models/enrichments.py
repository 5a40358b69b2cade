"""Tables owned by the scraping service for creator enrichment (kept apart from search jobs)."""

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field

from .base import TableBase, enum_column, one_of, tz_timestamp
from .enums import EnrichmentItemStatus, EnrichmentStatus, Platform

# One enrichment holds at most this many creators (a list's enrich; direct calls stop at 100).
ENRICHMENT_MAX_CREATORS = 1000


class Enrichment(TableBase, table=True):
    """One request to enrich a set of creators; its counters are written with its items."""

    __tablename__ = "scraping_enrichments"
    __table_args__ = (
        one_of("status", EnrichmentStatus),
        sa.CheckConstraint(f"total BETWEEN 1 AND {ENRICHMENT_MAX_CREATORS}", name="total_range"),
        sa.CheckConstraint(
            "done >= 0 AND failed >= 0 AND fetched >= 0 AND fetched <= done"
            " AND done + failed <= total",
            name="counters_consistent",
        ),
        sa.Index("ix_scraping_enrichments_user_id_created_at", "user_id", "created_at"),
        # The timeout sweep's live enrichments by age; retention's finished ones by end.
        sa.Index(
            "ix_scraping_enrichments_live_created_at",
            "created_at",
            postgresql_where=sa.text("status IN ('pending', 'processing')"),
        ),
        sa.Index(
            "ix_scraping_enrichments_finished_completed_at",
            "completed_at",
            postgresql_where=sa.text("status IN ('completed', 'error')"),
        ),
    )

    user_id: uuid.UUID = Field(
        sa_type=sa.Uuid, foreign_key="users.id", ondelete="CASCADE", nullable=False
    )
    status: str = enum_column(EnrichmentStatus, default=EnrichmentStatus.pending)
    total: int = Field(nullable=False)
    done: int = Field(default=0, nullable=False, sa_column_kwargs={"server_default": "0"})
    failed: int = Field(default=0, nullable=False, sa_column_kwargs={"server_default": "0"})
    # Items really asked from the provider: what billing keeps counted when it settles.
    fetched: int = Field(default=0, nullable=False, sa_column_kwargs={"server_default": "0"})
    reservation_id: uuid.UUID | None = Field(default=None, sa_type=sa.Uuid)
    completed_at: datetime | None = tz_timestamp()


class EnrichmentItem(TableBase, table=True):
    """One creator of an enrichment, in request order."""

    __tablename__ = "scraping_enrichment_items"
    __table_args__ = (
        sa.UniqueConstraint("enrichment_id", "position"),
        sa.UniqueConstraint("enrichment_id", "platform", "external_id"),
        one_of("platform", Platform),
        one_of("status", EnrichmentItemStatus),
    )

    enrichment_id: uuid.UUID = Field(
        sa_type=sa.Uuid, foreign_key="scraping_enrichments.id", ondelete="CASCADE", nullable=False
    )
    position: int = Field(nullable=False)
    platform: str = enum_column(Platform)
    external_id: str = Field(sa_type=sa.String(255), nullable=False)
    handle: str = Field(sa_type=sa.String(255), nullable=False)
    status: str = enum_column(EnrichmentItemStatus, default=EnrichmentItemStatus.pending)
    error: str | None = Field(default=None, sa_type=sa.Text)


class CreatorEnrichment(TableBase, table=True):
    """The latest enriched profile of a creator (public data, shared by every user)."""

    __tablename__ = "scraping_creator_profiles"
    __table_args__ = (
        sa.UniqueConstraint("platform", "external_id"),
        one_of("platform", Platform),
    )

    platform: str = enum_column(Platform)
    external_id: str = Field(sa_type=sa.String(255), nullable=False)
    handle: str = Field(sa_type=sa.String(255), nullable=False)
    # bio, emails, followers, following, posts, engagement_rate, avg_views, links, category,
    # verified, source, synthetic (enriched_at is the column below).
    profile: dict[str, Any] = Field(sa_type=JSONB, nullable=False)
    enriched_at: datetime = Field(sa_type=sa.DateTime(timezone=True), nullable=False)
