"""Per-user campaign counters kept by triggers; GIN on list tags; settled usage by month.

``campaign_user_stats`` holds, per user, the live campaigns by status, the lists, and the items
of unarchived lists by bucket: what the dashboard and the campaigns page's total used to count
on every request (a user with 74k campaigns: ~0.5 s). Triggers keep it in the same statement
as the rows it counts, so every path — the API, COPY, bulk statements, the user purge, foreign
key cascades — moves it, and concurrent writers serialise on the user's one row (an upsert
adds deltas to the latest committed values, so counts stay exact). Statement-level triggers
with transition tables: a bulk write or a COPY costs one grouped upsert, not one per row; an
UPDATE that moves no count (a rename) writes nothing.

Deleting a list: its items are removed by the foreign key cascade after the list row is gone,
when no trigger can still tell whose items they were, so a BEFORE DELETE row trigger on
``creator_lists`` takes the list's items out of the pipeline first and the ``list_items``
trigger ignores items whose list no longer exists. Counts for a user being deleted are skipped
(the stats row goes with the user).

Existing rows are counted once at upgrade.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-11 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from migrations.helpers import add_updated_at_trigger

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUSES = ("draft", "active", "completed", "archived")
BUCKETS = ("backlog", "shortlist", "contacted", "responded", "booked", "rejected")
COUNTERS = ("campaigns", *STATUSES, "lists", *BUCKETS)


def _upsert(deltas: str, counters: Sequence[str]) -> str:
    """Add ``deltas`` (rows of user_id and ``counters``, NULL = 0) to each user's row, users
    in id order (concurrent writers lock rows in one order), deltas that move nothing skipped."""
    sums = ", ".join(f"coalesce(sum(d.{c}), 0)::int AS {c}" for c in counters)
    moved = " OR ".join(f"coalesce(sum(d.{c}), 0) <> 0" for c in counters)
    sets = ", ".join(f"{c} = s.{c} + excluded.{c}" for c in counters)
    return f"""
    INSERT INTO campaign_user_stats AS s (user_id, {", ".join(counters)})
    SELECT d.user_id, {sums}
    FROM ({deltas}) d
    WHERE EXISTS (SELECT 1 FROM users u WHERE u.id = d.user_id)
    GROUP BY d.user_id
    HAVING {moved}
    ORDER BY d.user_id
    ON CONFLICT (user_id) DO UPDATE SET {sets};
    """


CAMPAIGN_COUNTERS = ("campaigns", *STATUSES)
LIST_COUNTERS = ("lists", *BUCKETS)


def _campaign_rows(table: str, sign: int) -> str:
    per_status = ", ".join(f"CASE WHEN status = '{s}' THEN {sign} END AS {s}" for s in STATUSES)
    return (
        f"SELECT user_id, {sign} AS campaigns, {per_status} FROM {table} WHERE deleted_at IS NULL"
    )


def _item_rows(table: str, sign: int) -> str:
    per_bucket = ", ".join(f"CASE WHEN i.bucket = '{b}' THEN {sign} END AS {b}" for b in BUCKETS)
    return (
        f"SELECT l.user_id, {per_bucket} FROM {table} i"
        " JOIN creator_lists l ON l.id = i.list_id WHERE NOT l.is_archived"
    )


def _list_items_of(list_id: str, sign: str) -> str:
    """One list's items by bucket, times ``sign`` (a PL/pgSQL expression)."""
    per_bucket = ", ".join(
        f"{sign} * count(*) FILTER (WHERE bucket = '{b}') AS {b}" for b in BUCKETS
    )
    return f"SELECT {per_bucket} FROM list_items WHERE list_id = {list_id}"


FUNCTIONS = {
    "campaign_stats_campaigns": f"""
    BEGIN
      IF TG_OP = 'INSERT' THEN
        {_upsert(_campaign_rows("new_rows", 1), CAMPAIGN_COUNTERS)}
      ELSIF TG_OP = 'DELETE' THEN
        {_upsert(_campaign_rows("old_rows", -1), CAMPAIGN_COUNTERS)}
      ELSE
        {
        _upsert(
            _campaign_rows("new_rows", 1) + " UNION ALL " + _campaign_rows("old_rows", -1),
            CAMPAIGN_COUNTERS,
        )
    }
      END IF;
      RETURN NULL;
    END""",
    "campaign_stats_lists": f"""
    BEGIN
      IF TG_OP = 'INSERT' THEN
        {_upsert("SELECT user_id, 1 AS lists FROM new_rows", ["lists"])}
      END IF;
      RETURN NULL;
    END""",
    # Row level: the list's items are still there (the cascade comes after).
    "campaign_stats_list_gone": f"""
    BEGIN
      IF OLD.is_archived THEN
        {_upsert("SELECT OLD.user_id AS user_id, -1 AS lists", ["lists"])}
      ELSE
        {_upsert(f"SELECT OLD.user_id AS user_id, -1 AS lists, b.* FROM ({_list_items_of('OLD.id', '-1')}) b", LIST_COUNTERS)}
      END IF;
      RETURN OLD;
    END""",
    # Row level, only when is_archived flips: the list's items leave or join the pipeline.
    "campaign_stats_list_archived": f"""
    BEGIN
      {_upsert(f"SELECT NEW.user_id AS user_id, b.* FROM ({_list_items_of('NEW.id', 'CASE WHEN NEW.is_archived THEN -1 ELSE 1 END')}) b", BUCKETS)}
      RETURN NULL;
    END""",
    "campaign_stats_items": f"""
    BEGIN
      IF TG_OP = 'INSERT' THEN
        {_upsert(_item_rows("new_rows", 1), BUCKETS)}
      ELSIF TG_OP = 'DELETE' THEN
        {_upsert(_item_rows("old_rows", -1), BUCKETS)}
      ELSE
        {_upsert(_item_rows("new_rows", 1) + " UNION ALL " + _item_rows("old_rows", -1), BUCKETS)}
      END IF;
      RETURN NULL;
    END""",
}

# name -> (table, timing and events, transition tables, level and condition, function)
TRIGGERS = {
    "trg_campaigns_stats_insert": ("campaigns", "AFTER INSERT", "REFERENCING NEW TABLE AS new_rows", "FOR EACH STATEMENT", "campaign_stats_campaigns"),
    "trg_campaigns_stats_update": ("campaigns", "AFTER UPDATE", "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows", "FOR EACH STATEMENT", "campaign_stats_campaigns"),
    "trg_campaigns_stats_delete": ("campaigns", "AFTER DELETE", "REFERENCING OLD TABLE AS old_rows", "FOR EACH STATEMENT", "campaign_stats_campaigns"),
    "trg_creator_lists_stats_insert": ("creator_lists", "AFTER INSERT", "REFERENCING NEW TABLE AS new_rows", "FOR EACH STATEMENT", "campaign_stats_lists"),
    "trg_creator_lists_stats_delete": ("creator_lists", "BEFORE DELETE", "", "FOR EACH ROW", "campaign_stats_list_gone"),
    "trg_creator_lists_stats_archived": ("creator_lists", "AFTER UPDATE OF is_archived", "", "FOR EACH ROW WHEN (OLD.is_archived IS DISTINCT FROM NEW.is_archived)", "campaign_stats_list_archived"),
    "trg_list_items_stats_insert": ("list_items", "AFTER INSERT", "REFERENCING NEW TABLE AS new_rows", "FOR EACH STATEMENT", "campaign_stats_items"),
    "trg_list_items_stats_update": ("list_items", "AFTER UPDATE", "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows", "FOR EACH STATEMENT", "campaign_stats_items"),
    "trg_list_items_stats_delete": ("list_items", "AFTER DELETE", "REFERENCING OLD TABLE AS old_rows", "FOR EACH STATEMENT", "campaign_stats_items"),
}  # fmt: skip


def _backfill() -> list[str]:
    campaigns = ", ".join(f"count(*) FILTER (WHERE status = '{s}') AS {s}" for s in STATUSES)
    buckets = ", ".join(f"count(*) FILTER (WHERE i.bucket = '{b}') AS {b}" for b in BUCKETS)
    return [
        _upsert(
            f"SELECT user_id, count(*) AS campaigns, {campaigns} FROM campaigns"
            " WHERE deleted_at IS NULL GROUP BY user_id",
            CAMPAIGN_COUNTERS,
        ),
        _upsert("SELECT user_id, count(*) AS lists FROM creator_lists GROUP BY user_id", ["lists"]),
        _upsert(
            f"SELECT l.user_id, {buckets} FROM list_items i"
            " JOIN creator_lists l ON l.id = i.list_id WHERE NOT l.is_archived GROUP BY l.user_id",
            BUCKETS,
        ),
    ]


def upgrade() -> None:
    op.create_table(
        "campaign_user_stats",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        *(
            sa.Column(c, sa.Integer(), server_default=sa.text("0"), nullable=False)
            for c in COUNTERS
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
            name=op.f("fk_campaign_user_stats_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_user_stats")),
        sa.UniqueConstraint("user_id", name=op.f("uq_campaign_user_stats_user_id")),
    )
    add_updated_at_trigger("campaign_user_stats")
    for name, body in FUNCTIONS.items():
        # SECURITY DEFINER: a cascade from another service's delete (identity deleting a user)
        # fires these as that service's role, which may not write campaign's counters.
        op.execute(
            f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER"
            f" SET search_path FROM CURRENT AS $${body}$$"
        )
    # Counted under the triggers' lock order: no write can slip between backfill and trigger.
    op.execute("LOCK TABLE campaigns, creator_lists, list_items IN SHARE ROW EXCLUSIVE MODE")
    for name, (table, when, referencing, level, function) in TRIGGERS.items():
        op.execute(
            f"CREATE TRIGGER {name} {when} ON {table} {referencing} {level}"
            f" EXECUTE FUNCTION {function}()"
        )
    for statement in _backfill():
        op.execute(statement)
    op.create_index("ix_creator_lists_tags_gin", "creator_lists", ["tags"], postgresql_using="gin")
    op.create_index(
        "ix_usage_reservations_user_id_settled_at_confirmed",
        "usage_reservations",
        ["user_id", "settled_at"],
        postgresql_where=sa.text("status = 'confirmed'"),
        postgresql_include=["resource", "used_amount"],
    )


def downgrade() -> None:
    op.drop_index("ix_usage_reservations_user_id_settled_at_confirmed", "usage_reservations")
    op.drop_index("ix_creator_lists_tags_gin", "creator_lists")
    for name, (table, *_rest) in TRIGGERS.items():
        op.execute(f"DROP TRIGGER {name} ON {table}")
    for name in FUNCTIONS:
        op.execute(f"DROP FUNCTION {name}()")
    op.drop_table("campaign_user_stats")
