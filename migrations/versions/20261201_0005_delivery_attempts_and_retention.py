"""Delivery and retention: per-event attempt counts, and indexes for the retention prunes.

``event_attempts`` counts a consumer's permanent failures at one event durably (a worker
restart does not reset them), so JetStream's own delivery limit is never what ends a message.

Each retention prune deletes one service's old rows in chunks; these indexes let it find them
without scanning the table:
- ``events (service, published_at)`` for published rows (replaces ``(published_at)``),
- ``inbox (service, created_at)`` (replaces ``(created_at)``),
- ``background_jobs (service, updated_at)`` for finished jobs,
- ``rate_limits (tat)`` for idle keys.
Built CONCURRENTLY so the services keep writing these hot tables while they build.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from migrations.helpers import (
    add_updated_at_trigger,
    create_index_concurrently,
    drop_index_concurrently,
)

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SERVICES = "'identity', 'billing', 'campaign', 'scraping'"
NEW_INDEXES = {
    "ix_events_service_published_at": (
        "events (service, published_at) WHERE published_at IS NOT NULL"
    ),
    "ix_inbox_service_created_at": "inbox (service, created_at)",
    "ix_background_jobs_service_finished": (
        "background_jobs (service, updated_at) WHERE status IN ('completed', 'failed')"
    ),
    "ix_rate_limits_tat": "rate_limits (tat)",
}
REPLACED_INDEXES = {
    "ix_events_published_at": "events (published_at)",
    "ix_inbox_created_at": "inbox (created_at)",
}


def upgrade() -> None:
    # Fail fast instead of queueing behind a long lock on a live table.
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.create_table(
        "event_attempts",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("service", sa.String(length=8), nullable=False),
        sa.Column("consumer", sa.String(length=100), nullable=False),
        sa.Column("event_id", sa.String(length=255), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.CheckConstraint("attempts >= 1", name=op.f("ck_event_attempts_attempts_positive")),
        sa.CheckConstraint(
            f"service IN ({SERVICES})", name=op.f("ck_event_attempts_service_allowed")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_attempts")),
        sa.UniqueConstraint(
            "consumer", "event_id", name=op.f("uq_event_attempts_consumer_event_id")
        ),
    )
    op.create_index(
        "ix_event_attempts_service_updated_at", "event_attempts", ["service", "updated_at"]
    )
    add_updated_at_trigger("event_attempts")
    for name, definition in NEW_INDEXES.items():
        create_index_concurrently(name, definition)
    for name in REPLACED_INDEXES:
        drop_index_concurrently(name)


def downgrade() -> None:
    for name, definition in REPLACED_INDEXES.items():
        create_index_concurrently(name, definition)
    for name in NEW_INDEXES:
        drop_index_concurrently(name)
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.drop_table("event_attempts")
