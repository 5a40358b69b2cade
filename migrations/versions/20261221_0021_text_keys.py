"""Job creators: past a job's first text block, each creator's trigrams keyed by its job.

A big job's rest (its creators past the first block of 65,536) is looked up by the few runs of
``q`` that a sample of its creators rarely hold (``scraping_text_picks``, migration 0020). In
the text index a run's posting list holds every job's creators, so each candidate is also
found in the job id's posting list, and that list is decoded wherever the candidates fall: a
rare fragment on a 1M-creator job spent ~4 ms there, for 755 candidates.

``scraping_text_keys(job, text)`` names each trigram of the text together with its job
(``<job id><trigram>``), and a GIN index of those keys holds only creators past the first block
(``ordinal >= 65536``). A run's key then lists the job's own candidates and nothing else, and
the rest's lookup needs no entry for the job at all. Every job a search makes holds at most
1,000 creators, so storing them never computes a key; only imported or seeded jobs pay, ~40 µs
per creator past the first block.

``scraping_text_key_picks`` is ``scraping_text_picks`` naming keys: the (at most) three runs
that the fewest of 32 sampled creators hold, among those that at most half of them hold, or
the one the fewest hold when every run is in more than half. ``scraping_text_picks`` stays for
workers of the previous release, which call it until they are replaced.

Built CONCURRENTLY, so results pages and the search work items go on meanwhile.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-21 09:00:00
"""

from collections.abc import Sequence

from alembic import op

from migrations.helpers import create_index_concurrently, drop_index_concurrently

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEYS = "scraping_text_keys"
PICKS = "scraping_text_key_picks"
INDEX = "ix_scraping_job_creators_text_keys"
# The trigrams as pg_trgm takes them from the text (so each run of three letters or digits in
# it is one), each prefixed with the job id: a key is ``<job id><trigram>``. pg_trgm names a
# trigram by its characters or a hex code, never with chr(1), which separates them here.
KEYS_BODY = """
  SELECT string_to_array(
    CAST(job AS text) || array_to_string(show_trgm(body), chr(1) || CAST(job AS text)), chr(1))
"""
# ``runs`` as in ``scraping_text_picks``: the runs of three ASCII letters or digits in the
# lower-cased ``q``. Returns their keys on ``job``: one to three, never none.
PICKS_BODY = """
BEGIN
  RETURN (
    WITH sample AS MATERIALIZED (
      SELECT s.search_text FROM generate_series(0, 31) AS g(i)
      JOIN scraping_job_creators AS s
        ON s.job_id = job AND s.ordinal = g.i * CAST(last_ordinal AS bigint) / 31
    ), counted AS (
      SELECT u.run, (SELECT count(*) FROM sample AS s WHERE strpos(s.search_text, u.run) > 0) AS n
      FROM unnest(runs) AS u(run)
    ), ranked AS (
      SELECT c.run, row_number() OVER (ORDER BY c.n, c.run) AS r,
             2 * c.n <= (SELECT count(*) FROM sample) AS rare
      FROM counted AS c
    )
    SELECT array_agg(CAST(job AS text) || k.run ORDER BY k.r)
    FROM ranked AS k WHERE k.r = 1 OR (k.rare AND k.r <= 3)
  );
END
"""


def upgrade() -> None:
    # SQL, declared immutable (it is: show_trgm is, and text arrays print the same anywhere),
    # with its own search_path so an index build finds show_trgm whatever the session's is.
    op.execute(
        f"CREATE FUNCTION {KEYS}(job uuid, body text) RETURNS text[] LANGUAGE sql IMMUTABLE"
        f" PARALLEL SAFE SET search_path FROM CURRENT AS $${KEYS_BODY}$$"
    )
    op.execute(
        f"CREATE FUNCTION {PICKS}(job uuid, last_ordinal integer, runs text[]) RETURNS text[]"
        f" LANGUAGE plpgsql STABLE SET search_path FROM CURRENT AS $${PICKS_BODY}$$"
    )
    create_index_concurrently(
        INDEX,
        f"scraping_job_creators USING gin ({KEYS}(job_id, search_text)) WHERE ordinal >= 65536",
    )


def downgrade() -> None:
    drop_index_concurrently(INDEX)
    op.execute(f"DROP FUNCTION {PICKS}(uuid, integer, text[])")
    op.execute(f"DROP FUNCTION {KEYS}(uuid, text)")
