"""How ``q`` is looked up in the trigram index, and the one ``q`` a results page refuses: text
the index cannot narrow, on a job bigger than any search makes.

``q`` is found through trigrams (three characters in a row); one with no three letters or
digits in a row gives the index nothing to narrow with, so every creator of the job is read
and checked: ~5 µs a creator, 5.3 s for ``ab`` on a 1M-creator job. A search makes at most
1,000 creators (``target_results``), where that costs a few milliseconds, so short text is
answered there and refused (422 ``query_too_short``) only on bigger, imported jobs.
"""

import re
import uuid
from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import DriverQuery
from shared.results import QueryTooShort

SHORT_TEXT_JOB = 1_000
_INDEXABLE = re.compile(r"[a-z0-9]{3}")
_SIZE = "SELECT j.processed_results FROM scraping_jobs AS j"
_JOB_SIZE = DriverQuery(
    sa.text(f"{_SIZE} WHERE j.id = :job_id").bindparams(sa.bindparam("job_id", type_=sa.Uuid))
)
# Only the caller's job answers, so another user's job stays a 404, never a 422.
_CALLERS_JOB_SIZE = DriverQuery(
    sa.text(
        f"{_SIZE} JOIN users AS u ON u.id = j.user_id"
        " WHERE j.id = :job_id AND u.user_id = :clerk_user_id AND u.deleted_at IS NULL"
    ).bindparams(sa.bindparam("job_id", type_=sa.Uuid))
)


def indexable(q: str | None) -> bool:
    """Whether ``q`` (if any) holds three ASCII letters or digits in a row: a trigram the
    index narrows by, whatever the database's locale makes of other characters."""
    return q is None or _INDEXABLE.search(q.lower()) is not None


def runs(q: str) -> list[str]:
    """The distinct runs of three ASCII letters or digits in lower-cased ``q``: each is in the
    text of every creator ``q`` matches, so the index may narrow by any of them."""
    body = q.lower()
    return sorted({body[i : i + 3] for i in range(len(body) - 2)
                   if _INDEXABLE.fullmatch(body[i : i + 3])})  # fmt: skip


# The runs a big job's candidates are looked up by (migration 0020's ``scraping_text_picks``),
# given the job's highest ordinal from the statement's CTE ``last``.
#
# The index lists a key's creators in one posting list per run, and intersecting them decodes
# each run's list over the job: a run nearly every creator holds (``cre`` of ``creator``)
# costs an entry per creator and narrows nothing (a fragment of 9 runs, 5 such, on a
# 1M-creator job: 22 ms in the index, against 4 for its other runs). The function samples 32
# creators spread over the job and names the three runs fewest of them hold, among those at
# most half of them hold (the whole pattern when there are none); the pattern itself is then
# checked on each candidate's row. Called only when a big job's first block held fewer
# matches than the cap, so that a common word (its cap found in the first block) pays nothing.
PICKED = """picked AS MATERIALIZED (
  SELECT f.p[1] AS p1, f.p[2] AS p2, f.p[3] AS p3
  FROM (SELECT scraping_text_picks(:job_id, (SELECT ordinal FROM last), CAST(:runs AS text[]),
                                   :pattern) AS p) AS f
)"""


def by_picked_runs(flags: Iterable[str]) -> str:
    """``q`` and the ``flags`` on a big job's creator ``k``: the picked runs and the flags are
    the index's conditions, the pattern is checked on the row (``IS TRUE`` keeps it out of the
    index: its other runs are what is left out).

    A flag is compared with a value computed once, not with ``= ANY(ARRAY[…])`` as elsewhere:
    beside runs known only when the statement runs, the planner takes their lookup for
    selective enough to check ``= ANY`` flags on each candidate's row instead (a block of the
    1M-creator job: 13,108 rows read to count 1,001, where the index narrows to 1,639)."""
    looked_up = [f"k.search_text LIKE (SELECT p{n} FROM picked)" for n in (1, 2, 3)]
    checks = [f"k.{flag} = (SELECT CAST(:{flag} AS boolean))" for flag in sorted(flags)]
    return " AND ".join([*looked_up, "(k.search_text LIKE :pattern ESCAPE '\\') IS TRUE", *checks])


def like_pattern(q: str) -> str:
    """``q`` as a ``LIKE … ESCAPE '\\'`` pattern: lower-cased (the indexed text is), its
    wildcards matched literally, anywhere in the text."""
    escaped = q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def refuse_short_text(
    session: AsyncSession, q: str | None, job_id: uuid.UUID, clerk_user_id: str | None = None
) -> None:
    """Raise :class:`QueryTooShort` for a ``q`` that is not :func:`indexable` on a job of
    more than :data:`SHORT_TEXT_JOB` creators (the caller's, when ``clerk_user_id`` is given);
    no statement at all for any other ``q``."""
    if indexable(q):
        return
    if clerk_user_id is None:
        size = await _JOB_SIZE.scalar(session, {"job_id": job_id})
    else:
        size = await _CALLERS_JOB_SIZE.scalar(
            session, {"job_id": job_id, "clerk_user_id": clerk_user_id}
        )
    if (size or 0) > SHORT_TEXT_JOB:
        raise QueryTooShort()
