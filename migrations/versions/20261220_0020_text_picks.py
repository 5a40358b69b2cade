"""Job creators: which runs of ``q`` a big job is looked up by in the text index.

The trigram index answers ``q`` by intersecting one posting list per run of three characters
in ``q``, and each list is decoded over the whole job. A run nearly every creator holds
(``cre`` of ``creator``) narrows nothing and costs an entry per creator: on a 1M-creator job a
fragment with 9 runs, 5 of them in every creator, spent 22 ms in the index, against 4 ms for
its other runs alone. ``scraping_text_picks`` samples 32 creators spread over the job's
discovery order and names the (at most) three runs the fewest of them hold, among those at
most half of them hold. On a job of more than two text blocks whose first block held fewer
matches than the count's cap, the rest's candidates are looked up by these and the whole
pattern is checked on each row. When every run is in more than half the sample, it names the
whole pattern.

A function rather than a clause of the results statement: that statement is planned on every
call, and the sample's plan would then be paid by every page of ``q``, most of them on jobs of
a thousand creators that never read it. A PL/pgSQL function's plan is made once per
connection, and only a big job calls it.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-20 09:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FUNCTION = "scraping_text_picks"
SIGNATURE = f"{FUNCTION}(job uuid, last_ordinal integer, runs text[], pattern text)"
# ``last_ordinal``: the job's highest ordinal (its caller has read it); ``runs``: the runs of
# three ASCII letters or digits in the lower-cased ``q``; ``pattern``: ``q`` as its ``LIKE``
# pattern. Returns three ``LIKE`` patterns (the last repeated when fewer runs qualify), each
# matched by every creator the pattern matches.
BODY = """
BEGIN
  RETURN (
    WITH sample AS MATERIALIZED (
      SELECT s.search_text FROM generate_series(0, 31) AS g(i)
      JOIN scraping_job_creators AS s
        ON s.job_id = job AND s.ordinal = g.i * CAST(last_ordinal AS bigint) / 31
    ), counted AS (
      SELECT u.run, (SELECT count(*) FROM sample AS s WHERE strpos(s.search_text, u.run) > 0) AS n
      FROM unnest(runs) AS u(run)
    )
    SELECT ARRAY[coalesce(a.p[1], pattern), coalesce(a.p[2], a.p[1], pattern),
                 coalesce(a.p[3], a.p[1], pattern)]
    FROM (SELECT array_agg('%' || c.run || '%' ORDER BY c.n, c.run)
                   FILTER (WHERE 2 * c.n <= (SELECT count(*) FROM sample)) AS p
          FROM counted AS c) AS a
  );
END
"""


def upgrade() -> None:
    op.execute(
        f"CREATE FUNCTION {SIGNATURE} RETURNS text[] LANGUAGE plpgsql STABLE"
        f" SET search_path FROM CURRENT AS $${BODY}$$"
    )


def downgrade() -> None:
    op.execute(f"DROP FUNCTION {FUNCTION}(uuid, integer, text[], text)")
