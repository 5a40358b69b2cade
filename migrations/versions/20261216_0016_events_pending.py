"""Events: unpublished rows listed in ``events_pending``; an ``events`` row is never updated.

The relay used to mark each published row with ``published_at``, rewriting the row and adding
an entry to every index of ``events``. Here an event's row in ``events_pending`` (same ``id``,
its ``service`` and ``seq``) is what makes it unpublished: the ``trg_events_pending`` trigger
inserts it in the statement that inserts the event, the relay claims from it in ``seq`` order
and deletes it once JetStream has acknowledged the event. ``publish_attempts`` and
``last_error`` (the failed attempts) move there with it.

``published_at`` goes: no per-row publish time is kept. Retention prunes published events by
``occurred_at`` (the new ``ix_events_service_occurred_at``), and the audit listing says
whether an event is published.

Upgrade: every unpublished row (``published_at IS NULL``) gets its pending row, keeping its
attempts and error, under a lock that keeps writers out until the trigger is in place.
Downgrade: the columns come back; rows still pending stay unpublished with their attempts and
error, the others take ``occurred_at`` as their ``published_at``.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-16 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from migrations.helpers import add_updated_at_trigger, create_index_concurrently

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SERVICES = "('identity', 'billing', 'campaign', 'scraping')"
FUNCTION = "scout_events_pending"
TRIGGER = "trg_events_pending"
RETENTION_INDEX = "ix_events_service_occurred_at"


def upgrade() -> None:
    op.create_table(
        "events_pending",
        sa.Column("service", sa.String(length=8), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("publish_attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(
            f"service IN {SERVICES}", name=op.f("ck_events_pending_service_allowed")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events_pending")),
    )
    op.create_index("ix_events_pending_service_seq", "events_pending", ["service", "seq"])
    add_updated_at_trigger("events_pending")
    op.execute(
        f"""
        CREATE FUNCTION {FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO events_pending (id, service, seq, created_at)
            SELECT id, service, seq, created_at FROM new_rows;
            RETURN NULL;
        END $$
        """
    )
    # Writers wait from here to commit: no event can be inserted between backfill and trigger.
    op.execute("LOCK TABLE events IN SHARE ROW EXCLUSIVE MODE")
    op.execute(
        f"CREATE TRIGGER {TRIGGER} AFTER INSERT ON events REFERENCING NEW TABLE AS new_rows"
        f" FOR EACH STATEMENT EXECUTE FUNCTION {FUNCTION}()"
    )
    op.execute(
        "INSERT INTO events_pending (id, service, seq, publish_attempts, last_error, created_at)"
        " SELECT id, service, seq, publish_attempts, last_error, created_at FROM events"
        " WHERE published_at IS NULL"
    )
    op.drop_index("ix_events_seq_unpublished", table_name="events")
    op.drop_index("ix_events_service_published_at", table_name="events")
    for column in ("published_at", "publish_attempts", "last_error"):
        op.drop_column("events", column)
    # After the commit of the above, so writers go on while it builds.
    create_index_concurrently(RETENTION_INDEX, "events (service, occurred_at)")


def downgrade() -> None:
    op.drop_index(RETENTION_INDEX, table_name="events")
    op.add_column("events", sa.Column("published_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column(
        "events",
        sa.Column("publish_attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
    )
    op.add_column("events", sa.Column("last_error", sa.Text(), nullable=True))
    op.execute("LOCK TABLE events IN SHARE ROW EXCLUSIVE MODE")
    op.execute(
        "UPDATE events AS e SET published_at = e.occurred_at"
        " WHERE NOT EXISTS (SELECT 1 FROM events_pending AS p WHERE p.id = e.id)"
    )
    op.execute(
        "UPDATE events AS e SET publish_attempts = p.publish_attempts, last_error = p.last_error"
        " FROM events_pending AS p WHERE p.id = e.id"
    )
    op.execute(f"DROP TRIGGER {TRIGGER} ON events")
    op.execute(f"DROP FUNCTION {FUNCTION}()")
    op.drop_table("events_pending")
    op.create_index(
        "ix_events_seq_unpublished",
        "events",
        ["seq"],
        postgresql_where=sa.text("published_at IS NULL"),
    )
    op.create_index(
        "ix_events_service_published_at",
        "events",
        ["service", "published_at"],
        postgresql_where=sa.text("published_at IS NOT NULL"),
    )
