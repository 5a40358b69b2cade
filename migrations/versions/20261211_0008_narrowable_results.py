"""Results you can narrow and sort: every stored creator gets a queryable row.

``scraping_job_creators`` (one row per creator of a job, the dedupe key) now also holds the
creator's job-wide discovery ``ordinal``, the ``creator`` as served, and columns generated from
it for the results' filters and sorts: ``followers``, ``verified``, ``has_email`` and
``search_text`` (lower-cased username, display name and bio, searched through one GIN index
of the job id and flags (btree_gin) and the text's trigrams (pg_trgm), both contrib extensions).
Ordered indexes on ``(job_id, ordinal)`` and ``(job_id, followers, ordinal)`` (both directions,
unknown followers last) carry the filter flags, so a narrowed or sorted page walks an index
instead of the job.

Data migration: each existing key row takes its ordinal and creator from the stored batches
(``scraping_results``, unchanged), matched on the creator key. Downgrade drops the new columns
and indexes; the batches never changed, so nothing is lost either way.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-11 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "scraping_job_creators"
INCLUDE = ["verified", "has_email"]
# The generated columns, as the model defines them at this revision.
FOLLOWERS = "CASE WHEN jsonb_typeof(creator -> 'followers') = 'number' THEN (creator ->> 'followers')::numeric::bigint END"
VERIFIED = "coalesce(creator -> 'verified' = 'true'::jsonb, false)"
HAS_EMAIL = "coalesce(jsonb_typeof(creator -> 'emails') = 'array' AND creator -> 'emails' <> '[]'::jsonb, false)"
SEARCH_TEXT = "lower(coalesce(creator ->> 'username', '') || ' ' || coalesce(creator ->> 'display_name', '') || ' ' || coalesce(creator ->> 'bio', ''))"

# Older creators may lack ``creator_key`` (or spell it ``handle``); every served item carries it.
BACKFILL = f"""
UPDATE {TABLE} AS k
   SET ordinal = e.ordinal,
       creator = e.creator || jsonb_build_object('creator_key', k.creator_key)
  FROM (SELECT r.job_id, r.first_ordinal + x.n - 1 AS ordinal, x.value AS creator,
               lower(btrim(coalesce(x.value ->> 'creator_key', x.value ->> 'handle'))) AS key
          FROM scraping_results AS r
         CROSS JOIN LATERAL jsonb_array_elements(r.creators) WITH ORDINALITY AS x(value, n)) AS e
 WHERE k.job_id = e.job_id AND k.creator_key = e.key
"""


def upgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.execute("CREATE EXTENSION IF NOT EXISTS btree_gin")
    op.add_column(TABLE, sa.Column("ordinal", sa.Integer(), nullable=True))
    op.add_column(TABLE, sa.Column("creator", sa.dialects.postgresql.JSONB(), nullable=True))
    op.execute(BACKFILL)
    # A key row without a stored creator cannot exist (both are written by one statement);
    # if one does, NOT NULL fails here and the migration stops rather than invent data.
    op.alter_column(TABLE, "ordinal", nullable=False)
    op.alter_column(TABLE, "creator", nullable=False)
    op.add_column(
        TABLE, sa.Column("followers", sa.BigInteger(), sa.Computed(FOLLOWERS, persisted=True))
    )
    for name, expr, type_ in (
        ("verified", VERIFIED, sa.Boolean()),
        ("has_email", HAS_EMAIL, sa.Boolean()),
        ("search_text", SEARCH_TEXT, sa.Text()),
    ):
        op.add_column(
            TABLE, sa.Column(name, type_, sa.Computed(expr, persisted=True), nullable=False)
        )
    op.create_check_constraint(op.f("ck_scraping_job_creators_ordinal_non_negative"), TABLE,
                               "ordinal >= 0")  # fmt: skip
    op.create_check_constraint(op.f("ck_scraping_job_creators_creator_is_object"), TABLE,
                               "jsonb_typeof(creator) = 'object'")  # fmt: skip
    op.create_index(
        "uq_scraping_job_creators_job_id_ordinal", TABLE, ["job_id", "ordinal"], unique=True,
        postgresql_include=["followers", *INCLUDE],
    )  # fmt: skip
    for direction in ("desc", "asc"):
        op.create_index(
            f"ix_scraping_job_creators_followers_{direction}",
            TABLE,
            ["job_id", sa.text(f"followers {direction.upper()} NULLS LAST"), "ordinal"],
            postgresql_include=INCLUDE,
        )
    op.create_index(
        "ix_scraping_job_creators_search_gin", TABLE, ["job_id", *INCLUDE, "search_text"],
        postgresql_using="gin", postgresql_ops={"search_text": "gin_trgm_ops"},
    )  # fmt: skip


def downgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    for index in (
        "ix_scraping_job_creators_search_gin",
        "ix_scraping_job_creators_followers_asc",
        "ix_scraping_job_creators_followers_desc",
        "uq_scraping_job_creators_job_id_ordinal",
    ):
        op.drop_index(index, table_name=TABLE)
    op.drop_constraint(op.f("ck_scraping_job_creators_creator_is_object"), TABLE, type_="check")
    op.drop_constraint(op.f("ck_scraping_job_creators_ordinal_non_negative"), TABLE, type_="check")
    for column in ("search_text", "has_email", "verified", "followers", "creator", "ordinal"):
        op.drop_column(TABLE, column)
    op.execute("DROP EXTENSION IF EXISTS btree_gin")
    op.execute("DROP EXTENSION IF EXISTS pg_trgm")
