"""Per-user per-UTC-month settled usage kept by triggers on ``usage_reservations``.

``billing_usage_months`` holds, per user and first day of the UTC calendar month of
``settled_at``, the ``used_amount`` of the user's confirmed reservations, one bigint column per
resource: what ``GET /billing/usage/history`` reads (one row per month of the window) instead
of summing every reservation the user settled. A reservation counts while its status is
``confirmed`` and it has a ``settled_at``; becoming confirmed adds it, and a confirmed row whose
used amount, settlement time, status, user or resource changes, or that is deleted, takes its
amount back from where it was counted.

Writes: an INSERT or DELETE of reservations is one grouped upsert per statement (transition
tables, so a COPY or a purge costs one upsert, not one per row). An UPDATE fires only when it
moves a reservation's contribution: a row trigger whose WHEN clause is evaluated without
calling the function, so reserving, releasing unused holds and expiring write nothing here.
Every upsert locks the (user, month) rows in key order. Amounts of a user being deleted are
skipped (the rows go with the user by the foreign key cascade).

Existing reservations are counted once at upgrade, under a lock that keeps writers out until the
triggers are in place. The partial index on confirmed reservations by (user_id, settled_at) goes:
the history was its only reader, and every confirm paid for it.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-14 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from migrations.helpers import add_updated_at_trigger

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Fixed here (not read from the enum) so this revision always builds the same schema.
RESOURCES = ("campaigns", "creators", "enrichments")
COUNTS = "status = 'confirmed' AND settled_at IS NOT NULL"


def _rows(source: str, sign: int) -> str:
    """Each counted reservation of ``source`` as its contribution, times ``sign``."""
    amounts = ", ".join(
        f"CASE WHEN resource = '{r}' THEN {sign} * coalesce(used_amount, 0)::bigint ELSE 0 END"
        f" AS {r}"
        for r in RESOURCES
    )
    return (
        f"SELECT user_id, date_trunc('month', settled_at AT TIME ZONE 'UTC')::date AS month,"
        f" {amounts} FROM {source} WHERE {COUNTS}"
    )


def _upsert(deltas: str) -> str:
    """Add ``deltas`` to each (user, month) row, rows in key order, deltas moving nothing and
    users being deleted skipped."""
    sums = ", ".join(f"sum(d.{r})" for r in RESOURCES)
    moved = " OR ".join(f"sum(d.{r}) <> 0" for r in RESOURCES)
    sets = ", ".join(f"{r} = m.{r} + excluded.{r}" for r in RESOURCES)
    return f"""
    INSERT INTO billing_usage_months AS m (user_id, month, {", ".join(RESOURCES)})
    SELECT d.user_id, d.month, {sums}
    FROM ({deltas}) d
    WHERE EXISTS (SELECT 1 FROM users u WHERE u.id = d.user_id)
    GROUP BY d.user_id, d.month
    HAVING {moved}
    ORDER BY d.user_id, d.month
    ON CONFLICT (user_id, month) DO UPDATE SET {sets};
    """


def _row(record: str) -> str:
    columns = ("user_id", "resource", "used_amount", "status", "settled_at")
    return "(SELECT " + ", ".join(f"{record}.{c} AS {c}" for c in columns) + ") r"


FUNCTIONS = {
    "billing_usage_months_rows": f"""
    BEGIN
      IF TG_OP = 'INSERT' THEN
        {_upsert(_rows("new_rows", 1))}
      ELSE
        {_upsert(_rows("old_rows", -1))}
      END IF;
      RETURN NULL;
    END""",
    "billing_usage_months_moved": f"""
    BEGIN
      {_upsert(_rows(_row("NEW"), 1) + " UNION ALL " + _rows(_row("OLD"), -1))}
      RETURN NULL;
    END""",
}


def _contribution(record: str) -> str:
    return (
        f"CASE WHEN {record}.status = 'confirmed' AND {record}.settled_at IS NOT NULL THEN"
        f" ({record}.user_id, {record}.resource, {record}.settled_at, {record}.used_amount)"
        " END"
    )


# Only when the reservation's contribution (counted or not, its user, resource, moment and
# amount) differs between the old and the new row.
_MOVED = f"{_contribution('OLD')} IS DISTINCT FROM {_contribution('NEW')}"

# name -> (timing and events, transition tables, level and condition, function)
TRIGGERS = {
    "trg_usage_reservations_months_insert": ("AFTER INSERT", "REFERENCING NEW TABLE AS new_rows", "FOR EACH STATEMENT", "billing_usage_months_rows"),
    "trg_usage_reservations_months_delete": ("AFTER DELETE", "REFERENCING OLD TABLE AS old_rows", "FOR EACH STATEMENT", "billing_usage_months_rows"),
    "trg_usage_reservations_months_update": ("AFTER UPDATE OF user_id, resource, used_amount, status, settled_at", "", f"FOR EACH ROW WHEN ({_MOVED})", "billing_usage_months_moved"),
}  # fmt: skip


def upgrade() -> None:
    op.create_table(
        "billing_usage_months",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        *(
            sa.Column(r, sa.BigInteger(), server_default=sa.text("0"), nullable=False)
            for r in RESOURCES
        ),
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_billing_usage_months_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billing_usage_months")),
        sa.UniqueConstraint("user_id", "month", name=op.f("uq_billing_usage_months_user_id_month")),
    )
    add_updated_at_trigger("billing_usage_months")
    for name, body in FUNCTIONS.items():
        # SECURITY DEFINER: a cascade from another service's delete (a user going) fires these
        # as that service's role, which may not write billing's tables.
        op.execute(
            f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER"
            f" SET search_path FROM CURRENT AS $${body}$$"
        )
    # Counted under the triggers' lock order: no write can slip between backfill and trigger.
    op.execute("LOCK TABLE usage_reservations IN SHARE ROW EXCLUSIVE MODE")
    for name, (when, referencing, level, function) in TRIGGERS.items():
        op.execute(
            f"CREATE TRIGGER {name} {when} ON usage_reservations {referencing} {level}"
            f" EXECUTE FUNCTION {function}()"
        )
    op.execute(_upsert(_rows("usage_reservations", 1)))
    op.drop_index("ix_usage_reservations_user_id_settled_at_confirmed", "usage_reservations")


def downgrade() -> None:
    op.create_index(
        "ix_usage_reservations_user_id_settled_at_confirmed",
        "usage_reservations",
        ["user_id", "settled_at"],
        postgresql_where=sa.text("status = 'confirmed'"),
        postgresql_include=["resource", "used_amount"],
    )
    for name in TRIGGERS:
        op.execute(f"DROP TRIGGER {name} ON usage_reservations")
    for name in FUNCTIONS:
        op.execute(f"DROP FUNCTION {name}()")
    op.drop_table("billing_usage_months")
