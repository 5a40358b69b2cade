"""Events: drop the index on (type, occurred_at), which no query reads.

Reads of ``events`` go by user (the audit listing and the dashboard's recent activity:
``ix_events_user_id_occurred_at``), by aggregate (billing's trial-expiry check:
``ix_events_aggregate_type_aggregate_id``), by unpublished ``seq`` (the relay) and by published
time per service (retention). Every row the relay marks published is rewritten and adds an entry
to each index of the table, so an index no query reads is paid for on every event twice, at
insert and at publish. Dropped CONCURRENTLY so the outbox keeps being written meanwhile.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-15 09:00:00
"""

from collections.abc import Sequence

from migrations.helpers import create_index_concurrently, drop_index_concurrently

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_events_type_occurred_at"


def upgrade() -> None:
    drop_index_concurrently(INDEX)


def downgrade() -> None:
    create_index_concurrently(INDEX, "events (type, occurred_at)")
