"""Creator enrichment: enrichments, their items, and the latest enriched profile per creator.

Three new tables owned by scraping; nothing existing is rewritten.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-11 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from migrations.helpers import add_updated_at_trigger

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PLATFORMS = "platform IN ('instagram', 'tiktok', 'youtube')"


def _base() -> list[sa.Column]:
    return [
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"),
            nullable=False,
        ),
    ]  # fmt: skip


def upgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.create_table(
        "scraping_enrichments",
        *_base(),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=10), server_default="pending", nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("done", sa.Integer(), server_default="0", nullable=False),
        sa.Column("failed", sa.Integer(), server_default="0", nullable=False),
        sa.Column("fetched", sa.Integer(), server_default="0", nullable=False),
        sa.Column("reservation_id", sa.Uuid(), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'processing', 'completed', 'error')",
            name=op.f("ck_scraping_enrichments_status_allowed"),
        ),
        sa.CheckConstraint(
            "total BETWEEN 1 AND 1000", name=op.f("ck_scraping_enrichments_total_range")
        ),
        sa.CheckConstraint(
            "done >= 0 AND failed >= 0 AND fetched >= 0 AND fetched <= done"
            " AND done + failed <= total",
            name=op.f("ck_scraping_enrichments_counters_consistent"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_scraping_enrichments_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scraping_enrichments")),
    )
    op.create_index(
        "ix_scraping_enrichments_user_id_created_at",
        "scraping_enrichments",
        ["user_id", "created_at"],
    )
    op.create_table(
        "scraping_enrichment_items",
        *_base(),
        sa.Column("enrichment_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("platform", sa.String(length=9), nullable=False),
        sa.Column("external_id", sa.String(length=255), nullable=False),
        sa.Column("handle", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=7), server_default="pending", nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.CheckConstraint(PLATFORMS, name=op.f("ck_scraping_enrichment_items_platform_allowed")),
        sa.CheckConstraint(
            "status IN ('pending', 'fetched', 'cached', 'failed')",
            name=op.f("ck_scraping_enrichment_items_status_allowed"),
        ),
        sa.ForeignKeyConstraint(
            ["enrichment_id"],
            ["scraping_enrichments.id"],
            name=op.f("fk_scraping_enrichment_items_enrichment_id_scraping_enrichments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scraping_enrichment_items")),
        sa.UniqueConstraint(
            "enrichment_id",
            "position",
            name=op.f("uq_scraping_enrichment_items_enrichment_id_position"),
        ),
        sa.UniqueConstraint(
            "enrichment_id",
            "platform",
            "external_id",
            name=op.f("uq_scraping_enrichment_items_enrichment_id_platform_external_id"),
        ),
    )
    op.create_table(
        "scraping_creator_profiles",
        *_base(),
        sa.Column("platform", sa.String(length=9), nullable=False),
        sa.Column("external_id", sa.String(length=255), nullable=False),
        sa.Column("handle", sa.String(length=255), nullable=False),
        sa.Column("profile", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("enriched_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(PLATFORMS, name=op.f("ck_scraping_creator_profiles_platform_allowed")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scraping_creator_profiles")),
        sa.UniqueConstraint(
            "platform",
            "external_id",
            name=op.f("uq_scraping_creator_profiles_platform_external_id"),
        ),
    )
    for table in ("scraping_enrichments", "scraping_enrichment_items", "scraping_creator_profiles"):
        add_updated_at_trigger(table)


def downgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.drop_table("scraping_creator_profiles")
    op.drop_table("scraping_enrichment_items")
    op.drop_index("ix_scraping_enrichments_user_id_created_at", "scraping_enrichments")
    op.drop_table("scraping_enrichments")
