"""The one ``q`` a results page refuses: text the trigram index cannot narrow, on a job bigger
than any search makes.

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
