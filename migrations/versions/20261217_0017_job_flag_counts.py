"""Per-job counts of each ``verified`` / ``has_email`` combination, kept by triggers.

``scraping_job_flag_counts`` holds, per job and combination of the two flags, how many of the
job's creators have it: a results page narrowed by those flags alone reads its exact ``total``
from at most four rows instead of counting the job's matching creators (up to 40,000 index
entries for a filter one creator in 40 passes, to reach the count's cap).

Writes: every INSERT, UPDATE or DELETE of ``scraping_job_creators`` is one grouped upsert per
statement (transition tables, so a page of a search, a COPY or a job's cascade costs one
upsert of at most four rows per job), rows locked in key order. Counts for a job being deleted
are skipped (its rows go with it by the foreign key cascade).

Existing creators are counted once at upgrade, under a lock that keeps writers out until the
triggers are in place.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-17 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from migrations.helpers import add_updated_at_trigger

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "scraping_job_flag_counts"
FUNCTION = "scraping_job_flag_counts_move"
KEY = "job_id, verified, has_email"


def _upsert(deltas: str) -> str:
    """Add ``deltas`` (``job_id, verified, has_email, creators``) to each combination's row,
    rows in key order, deltas moving nothing and jobs being deleted skipped (one job probe per
    combination, after grouping, not one per row)."""
    return f"""
    INSERT INTO {TABLE} AS f ({KEY}, creators)
    SELECT d.job_id, d.verified, d.has_email, d.creators
    FROM (SELECT {KEY}, sum(creators) AS creators FROM ({deltas}) x GROUP BY {KEY}) d
    WHERE d.creators <> 0 AND EXISTS (SELECT 1 FROM scraping_jobs j WHERE j.id = d.job_id)
    ORDER BY d.job_id, d.verified, d.has_email
    ON CONFLICT ({KEY}) DO UPDATE SET creators = f.creators + excluded.creators;
    """


def _rows(source: str, sign: int) -> str:
    return f"SELECT {KEY}, {sign} AS creators FROM {source}"


BODY = f"""
    BEGIN
      IF TG_OP = 'INSERT' THEN
        {_upsert(_rows("new_rows", 1))}
      ELSIF TG_OP = 'DELETE' THEN
        {_upsert(_rows("old_rows", -1))}
      ELSE
        {_upsert(_rows("new_rows", 1) + " UNION ALL " + _rows("old_rows", -1))}
      END IF;
      RETURN NULL;
    END"""

# name -> (event, transition tables)
TRIGGERS = {
    "trg_scraping_job_creators_flags_insert": ("INSERT", "NEW TABLE AS new_rows"),
    "trg_scraping_job_creators_flags_update": ("UPDATE", "OLD TABLE AS old_rows NEW TABLE AS new_rows"),
    "trg_scraping_job_creators_flags_delete": ("DELETE", "OLD TABLE AS old_rows"),
}  # fmt: skip


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("verified", sa.Boolean(), nullable=False),
        sa.Column("has_email", sa.Boolean(), nullable=False),
        sa.Column("creators", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["scraping_jobs.id"],
            name=op.f("fk_scraping_job_flag_counts_job_id_scraping_jobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scraping_job_flag_counts")),
        sa.UniqueConstraint(
            "job_id",
            "verified",
            "has_email",
            name=op.f("uq_scraping_job_flag_counts_job_id_verified_has_email"),
        ),
    )
    add_updated_at_trigger(TABLE)
    # SECURITY DEFINER: a cascade from another service's delete (a campaign or a user going)
    # fires this as that service's role, which may not write scraping's counters.
    op.execute(
        f"CREATE FUNCTION {FUNCTION}() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER"
        f" SET search_path FROM CURRENT AS $${BODY}$$"
    )
    # Counted under the triggers' lock: no write can slip between backfill and trigger.
    op.execute("LOCK TABLE scraping_job_creators IN SHARE ROW EXCLUSIVE MODE")
    for name, (event, referencing) in TRIGGERS.items():
        op.execute(
            f"CREATE TRIGGER {name} AFTER {event} ON scraping_job_creators"
            f" REFERENCING {referencing} FOR EACH STATEMENT EXECUTE FUNCTION {FUNCTION}()"
        )
    op.execute(_upsert(_rows("scraping_job_creators", 1)))


def downgrade() -> None:
    for name in TRIGGERS:
        op.execute(f"DROP TRIGGER {name} ON scraping_job_creators")
    op.execute(f"DROP FUNCTION {FUNCTION}()")
    op.drop_table(TABLE)
