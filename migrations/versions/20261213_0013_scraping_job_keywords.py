"""Each job's keywords as rows, kept by triggers on ``scraping_jobs``, for ``GET /jobs?keyword=``.

``scraping_job_keywords`` holds one row per (job, keyword) with the job's user and creation
time, indexed as ``(user_id, keyword, job_created_at DESC, job_id DESC)``: a user's jobs with a
keyword, newest first, are one ordered index range. A page reads its entries and then only the
page's jobs; the total counts index entries and stops at the cap. Neither depends on how many
jobs the user has or how many match (a GIN index on ``keywords`` finds every matching job of
every user and then filters and sorts them).

Keywords are the job's string elements of at most 100 characters (what a search accepts and
what ``keyword`` can ask for). Inserts are one statement per statement (transition table);
a job's rows are rebuilt when its keywords, user or creation time change (never, through the
API); they go with the job (foreign key cascade). Existing jobs are indexed at upgrade, under a
lock that keeps writers out until the triggers are in place.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-13 13:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from migrations.helpers import add_updated_at_trigger

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _insert(source: str) -> str:
    return f"""
    INSERT INTO scraping_job_keywords (job_id, user_id, keyword, job_created_at)
    SELECT DISTINCT j.id, j.user_id, e.value #>> '{{}}', j.created_at
    FROM {source} j CROSS JOIN LATERAL jsonb_array_elements(
      CASE WHEN jsonb_typeof(j.keywords) = 'array' THEN j.keywords ELSE '[]'::jsonb END) e
    WHERE jsonb_typeof(e.value) = 'string' AND char_length(e.value #>> '{{}}') <= 100
    ORDER BY 1, 3
    ON CONFLICT (job_id, keyword) DO NOTHING;
    """


FUNCTIONS = {
    "scraping_keywords_jobs": f"""
    BEGIN
      {_insert("new_rows")}
      RETURN NULL;
    END""",
    "scraping_keywords_job_changed": f"""
    BEGIN
      DELETE FROM scraping_job_keywords WHERE job_id = OLD.id;
      {_insert("(SELECT NEW.id AS id, NEW.user_id AS user_id, NEW.keywords AS keywords, NEW.created_at AS created_at)")}
      RETURN NULL;
    END""",
}

_CHANGED = (
    "(OLD.keywords, OLD.user_id, OLD.created_at)"
    " IS DISTINCT FROM (NEW.keywords, NEW.user_id, NEW.created_at)"
)
# name -> (timing and events, transition tables, level and condition, function)
TRIGGERS = {
    "trg_scraping_jobs_keywords_insert": ("AFTER INSERT", "REFERENCING NEW TABLE AS new_rows", "FOR EACH STATEMENT", "scraping_keywords_jobs"),
    "trg_scraping_jobs_keywords_update": ("AFTER UPDATE OF keywords, user_id, created_at", "", f"FOR EACH ROW WHEN ({_CHANGED})", "scraping_keywords_job_changed"),
}  # fmt: skip


def upgrade() -> None:
    op.create_table(
        "scraping_job_keywords",
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("keyword", sa.Text(), nullable=False),
        sa.Column("job_created_at", sa.DateTime(timezone=True), nullable=False),
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
            name=op.f("fk_scraping_job_keywords_job_id_scraping_jobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scraping_job_keywords")),
        sa.UniqueConstraint(
            "job_id", "keyword", name=op.f("uq_scraping_job_keywords_job_id_keyword")
        ),
    )
    add_updated_at_trigger("scraping_job_keywords")
    for name, body in FUNCTIONS.items():
        # SECURITY DEFINER: as scraping's other triggers, whoever's role writes the jobs.
        op.execute(
            f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER"
            f" SET search_path FROM CURRENT AS $${body}$$"
        )
    op.execute("LOCK TABLE scraping_jobs IN SHARE ROW EXCLUSIVE MODE")
    for name, (when, referencing, level, function) in TRIGGERS.items():
        op.execute(
            f"CREATE TRIGGER {name} {when} ON scraping_jobs {referencing} {level}"
            f" EXECUTE FUNCTION {function}()"
        )
    op.execute(_insert("scraping_jobs"))
    # Built after the backfill: one sorted build instead of millions of insertions.
    op.create_index(
        "ix_scraping_job_keywords_user_id_keyword_newest",
        "scraping_job_keywords",
        ["user_id", "keyword", sa.text("job_created_at DESC"), sa.text("job_id DESC")],
    )


def downgrade() -> None:
    for name in TRIGGERS:
        op.execute(f"DROP TRIGGER {name} ON scraping_jobs")
    for name in FUNCTIONS:
        op.execute(f"DROP FUNCTION {name}()")
    op.drop_table("scraping_job_keywords")
