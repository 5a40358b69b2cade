"""Indexes for the enrichment timeout sweep (live enrichments by age) and for retention
(finished enrichments by completion time); both partial, so each stays small.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-12 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_scraping_enrichments_live_created_at",
        "scraping_enrichments",
        ["created_at"],
        postgresql_where=sa.text("status IN ('pending', 'processing')"),
    )
    op.create_index(
        "ix_scraping_enrichments_finished_completed_at",
        "scraping_enrichments",
        ["completed_at"],
        postgresql_where=sa.text("status IN ('completed', 'error')"),
    )


def downgrade() -> None:
    op.drop_index("ix_scraping_enrichments_finished_completed_at", "scraping_enrichments")
    op.drop_index("ix_scraping_enrichments_live_created_at", "scraping_enrichments")
