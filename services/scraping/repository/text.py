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


# The keys a big job's rest is looked up by (migration 0021's ``scraping_text_key_picks``),
# given the job's highest ordinal from the statement's CTE ``last``.
#
# Past a job's first block, the index ``ix_scraping_job_creators_text_keys`` lists each
# trigram of a creator's text under a key of its own job (``<job id><trigram>``), so a run's
# key lists that job's candidates and no entry for the job is read. Intersecting keys still
# decodes each one's list wherever the others' candidates fall, and a run nearly every creator
# holds (``cre`` of ``creator``) narrows nothing: a fragment of 9 runs, 5 such, on a
# 1M-creator job spent 22 ms in the index, against 4 for its other runs. The function samples
# 32 creators spread over the job and names the keys of the three runs fewest of them hold,
# among those at most half of them hold (the one fewest hold when there are none); the
# pattern itself is then checked on each candidate's row. Called only when a big job's first
# block held fewer matches than the cap, so that a common word (its cap found in the first
# block) pays nothing.
PICKED = """picked AS MATERIALIZED (
  SELECT scraping_text_key_picks(:job_id, (SELECT ordinal FROM last), CAST(:runs AS text[]))
    AS keys
)"""


def by_picked_keys(conditions: str) -> str:
    """The rest of a big job's creators ``k`` that match ``q`` and the ``conditions`` (flags,
    follower ranges): candidates by the picked keys, which name the job, and the pattern and
    the ``conditions`` checked on each one's row (``IS TRUE`` keeps them out of the text
    index, whose lists span every job)."""
    return (
        "scraping_text_keys(k.job_id, k.search_text) @> (SELECT keys FROM picked)"
        f" AND (k.search_text LIKE :pattern ESCAPE '\\'{conditions}) IS TRUE"
    )


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
