"""User deletion steps and idempotency keys.

``user_deletion_steps`` (identity): one row per purging service and deleted user, marked applied
when that service acknowledges the purge with its ``<service>.user.purged`` event; the ``users``
row goes only once every step is applied. Users whose deletion had started before this revision
get a pending step for every purging service, asked again by identity's re-announcement, so no
deletion is purged on the old time-based fallback or forgotten.

``idempotency_keys`` (every API, rows tagged with the service): the first response to a POST
sent with an ``Idempotency-Key``, replayed for a repeat of that request.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-10 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from migrations.helpers import add_updated_at_trigger

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SERVICES = "'identity', 'billing', 'campaign', 'scraping'"
PURGING_SERVICES = ("billing", "campaign", "scraping")


def _timestamps() -> list[sa.Column]:
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
    # Fail fast instead of queueing behind a long lock on a live table.
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.create_table(
        "user_deletion_steps",
        *_timestamps(),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("service", sa.String(length=8), nullable=False),
        sa.Column(
            "requested_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            f"service IN ({SERVICES})", name=op.f("ck_user_deletion_steps_service_allowed")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_user_deletion_steps_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_deletion_steps")),
        sa.UniqueConstraint(
            "user_id", "service", name=op.f("uq_user_deletion_steps_user_id_service")
        ),
    )
    op.create_index(
        "ix_user_deletion_steps_pending",
        "user_deletion_steps",
        ["requested_at"],
        postgresql_where=sa.text("applied_at IS NULL"),
    )
    add_updated_at_trigger("user_deletion_steps")
    # Deletions already under way: every purging service still has to confirm. requested_at is
    # the deletion's start, so the next re-announcement asks them again at once.
    services = ", ".join(f"('{s}')" for s in PURGING_SERVICES)
    op.execute(
        "INSERT INTO user_deletion_steps (user_id, service, requested_at, created_at)"
        " SELECT u.id, s.service, u.deleted_at, u.deleted_at"
        f" FROM users u CROSS JOIN (VALUES {services}) AS s(service)"
        " WHERE u.deleted_at IS NOT NULL"
    )

    op.create_table(
        "idempotency_keys",
        *_timestamps(),
        sa.Column("service", sa.String(length=8), nullable=False),
        sa.Column("clerk_user_id", sa.Text(), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("method", sa.String(length=10), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=10), server_default="processing", nullable=False),
        sa.Column("attempt", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("response_status", sa.SmallInteger(), nullable=True),
        sa.Column("response_headers", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("response_body", sa.LargeBinary(), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            f"service IN ({SERVICES})", name=op.f("ck_idempotency_keys_service_allowed")
        ),
        sa.CheckConstraint(
            "status IN ('processing', 'completed')",
            name=op.f("ck_idempotency_keys_status_allowed"),
        ),
        sa.CheckConstraint("attempt >= 1", name=op.f("ck_idempotency_keys_attempt_positive")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_idempotency_keys")),
        sa.UniqueConstraint(
            "clerk_user_id", "key", name=op.f("uq_idempotency_keys_clerk_user_id_key")
        ),
    )
    op.create_index(
        "ix_idempotency_keys_service_created_at", "idempotency_keys", ["service", "created_at"]
    )
    add_updated_at_trigger("idempotency_keys")


def downgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.drop_table("idempotency_keys")
    op.drop_table("user_deletion_steps")
