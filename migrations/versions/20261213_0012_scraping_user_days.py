"""Per-user per-UTC-day search counters kept by triggers on ``scraping_jobs``.

``scraping_user_days`` holds, per user and UTC day of ``created_at``, the searches created, the
searches completed and the creators found by finished searches: what the dashboard's 30-day
figures read instead of counting the user's jobs of the window. Each job contributes one
search to its day, one completed search once its status is ``completed``, and its
``processed_results`` once it is in any terminal state; the creators of still-running jobs are
added by the dashboard from the user's unfinished jobs (as many as the plan runs at once).

Writes: an INSERT or DELETE of jobs is one grouped upsert per statement (transition tables,
so a COPY or a purge costs one upsert, not one per row). An UPDATE fires only when it moves a
job's contribution (a terminal transition, or results of a finished job changing): a row
trigger whose WHEN clause is evaluated without calling the function, so progress updates of a
running job write nothing. Every upsert locks the (user, day) rows in key order. Counts for a
user being deleted are skipped (the rows go with the user by the foreign key cascade).

Existing jobs are counted once at upgrade, under a lock that keeps writers out until the
triggers are in place.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-13 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from migrations.helpers import add_updated_at_trigger

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LIVE = "('pending', 'processing')"
COUNTERS = ("searches", "completed", "creators")


def _rows(source: str, sign: int) -> str:
    """Each job of ``source`` as its contribution, times ``sign``."""
    return (
        f"SELECT user_id, (created_at AT TIME ZONE 'UTC')::date AS day, {sign} AS searches,"
        f" CASE WHEN status = 'completed' THEN {sign} ELSE 0 END AS completed,"
        f" CASE WHEN status IN {LIVE} THEN 0 ELSE {sign} * processed_results::bigint END"
        f" AS creators FROM {source}"
    )


def _upsert(deltas: str) -> str:
    """Add ``deltas`` to each (user, day) row, rows in key order, deltas moving nothing and
    users being deleted skipped."""
    sums = ", ".join(f"sum(d.{c})" for c in COUNTERS)
    moved = " OR ".join(f"sum(d.{c}) <> 0" for c in COUNTERS)
    sets = ", ".join(f"{c} = s.{c} + excluded.{c}" for c in COUNTERS)
    return f"""
    INSERT INTO scraping_user_days AS s (user_id, day, {", ".join(COUNTERS)})
    SELECT d.user_id, d.day, {sums}
    FROM ({deltas}) d
    WHERE EXISTS (SELECT 1 FROM users u WHERE u.id = d.user_id)
    GROUP BY d.user_id, d.day
    HAVING {moved}
    ORDER BY d.user_id, d.day
    ON CONFLICT (user_id, day) DO UPDATE SET {sets};
    """


def _row(record: str) -> str:
    return (
        f"(SELECT {record}.user_id AS user_id, {record}.created_at AS created_at,"
        f" {record}.status AS status, {record}.processed_results AS processed_results) r"
    )


FUNCTIONS = {
    "scraping_days_jobs": f"""
    BEGIN
      IF TG_OP = 'INSERT' THEN
        {_upsert(_rows("new_rows", 1))}
      ELSE
        {_upsert(_rows("old_rows", -1))}
      END IF;
      RETURN NULL;
    END""",
    "scraping_days_job_moved": f"""
    BEGIN
      {_upsert(_rows(_row("NEW"), 1) + " UNION ALL " + _rows(_row("OLD"), -1))}
      RETURN NULL;
    END""",
}


def _contribution(record: str) -> str:
    return (
        f"({record}.status = 'completed'),"
        f" CASE WHEN {record}.status IN {LIVE} THEN 0 ELSE {record}.processed_results END"
    )


# Only when the job's contribution (its user, its day, completed or not, creators counted
# once finished) differs between the old and the new row.
_MOVED = (
    f"(OLD.user_id, OLD.created_at, {_contribution('OLD')})"
    f" IS DISTINCT FROM (NEW.user_id, NEW.created_at, {_contribution('NEW')})"
)

# name -> (timing and events, transition tables, level and condition, function)
TRIGGERS = {
    "trg_scraping_jobs_days_insert": ("AFTER INSERT", "REFERENCING NEW TABLE AS new_rows", "FOR EACH STATEMENT", "scraping_days_jobs"),
    "trg_scraping_jobs_days_delete": ("AFTER DELETE", "REFERENCING OLD TABLE AS old_rows", "FOR EACH STATEMENT", "scraping_days_jobs"),
    "trg_scraping_jobs_days_update": ("AFTER UPDATE OF user_id, created_at, status, processed_results", "", f"FOR EACH ROW WHEN ({_MOVED})", "scraping_days_job_moved"),
}  # fmt: skip


def upgrade() -> None:
    op.create_table(
        "scraping_user_days",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("searches", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("completed", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("creators", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
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
            name=op.f("fk_scraping_user_days_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scraping_user_days")),
        sa.UniqueConstraint("user_id", "day", name=op.f("uq_scraping_user_days_user_id_day")),
    )
    add_updated_at_trigger("scraping_user_days")
    for name, body in FUNCTIONS.items():
        # SECURITY DEFINER: a cascade from another service's delete (a campaign or a user going)
        # fires these as that service's role, which may not write scraping's counters.
        op.execute(
            f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER"
            f" SET search_path FROM CURRENT AS $${body}$$"
        )
    # Counted under the triggers' lock order: no write can slip between backfill and trigger.
    op.execute("LOCK TABLE scraping_jobs IN SHARE ROW EXCLUSIVE MODE")
    for name, (when, referencing, level, function) in TRIGGERS.items():
        op.execute(
            f"CREATE TRIGGER {name} {when} ON scraping_jobs {referencing} {level}"
            f" EXECUTE FUNCTION {function}()"
        )
    op.execute(_upsert(_rows("scraping_jobs", 1)))


def downgrade() -> None:
    for name in TRIGGERS:
        op.execute(f"DROP TRIGGER {name} ON scraping_jobs")
    for name in FUNCTIONS:
        op.execute(f"DROP FUNCTION {name}()")
    op.drop_table("scraping_user_days")
