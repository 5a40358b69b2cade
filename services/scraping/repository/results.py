"""Narrowed and sorted results pages, and a job's creators by key (for lists).

Reads the per-creator rows of ``scraping_job_creators`` (see the model): the page's positions
come from an ordered index walk — ``(job_id, ordinal)`` for discovery order,
``(job_id, followers, ordinal)`` in either direction for the follower sorts, each carrying
``verified`` and ``has_email`` so those filters need no heap visit — and only the page's rows
are then fetched for their creators. ``q`` matches through one GIN index of ``(job_id,
ordinal / TEXT_BLOCK, verified, has_email, search_text)`` (btree_gin + pg_trgm) when it is
selective, or filters the ordered walk when it is not.

Cost: the page's rows are fetched, plus the index entries the walk passes on its way: at most
``offset`` + the non-matching ones in between. ``offset`` of a narrowed or sorted page is
bounded (:data:`MAX_NARROWED_OFFSET`, 422 beyond), so no page walks a whole 100k-creator job.

``total`` is exact up to :data:`COUNT_CAP` matches — every job Scout creates holds at most
1,000 creators (``target_results``), so for those it is always exact; counting stops there, so
a page of a bigger (imported or seeded) job never counts the whole job, and the page says
``total_capped`` when it stopped. Without filters the total is the job's stored count, read
from the job row; narrowed by ``verified`` and/or ``has_email`` alone, it is exact at any size,
read from the job's ``scraping_job_flag_counts`` rows.
"""

import uuid
from dataclasses import dataclass
from functools import cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import DriverQuery
from shared.models.scraping import TEXT_BLOCK
from shared.queries.pagination import COUNT_CAP, InvalidPage, capped
from shared.results import ResultsFilter, ResultsSort

from ..schemas import MAX_NARROWED_OFFSET
from .jobs import validate_window
from .text import PICKED, by_picked_keys, like_pattern, refuse_short_text, runs

_ORDER = {
    ResultsSort.found: "{t}.ordinal",
    ResultsSort.followers_desc: "{t}.followers DESC NULLS LAST, {t}.ordinal",
    ResultsSort.followers_asc: "{t}.followers ASC NULLS LAST, {t}.ordinal",
}
# The flags are compared with ``= ANY(ARRAY[…])``: a plan made for the call's values folds
# ``verified = true`` into a bare boolean column, which the GIN index's ``verified`` and
# ``has_email`` columns cannot answer, so ``q`` with a flag read every match of ``q`` on the
# heap (8,000 rows for 1,001 counted on the seed's 100k-creator job, against 1,001 with it).
_CONDITIONS = {
    "min_followers": "followers >= :min_followers",
    "max_followers": "followers <= :max_followers",
    "verified": "verified = ANY(ARRAY[:verified])",
    "has_email": "has_email = ANY(ARRAY[:has_email])",
    "q": "search_text LIKE :pattern ESCAPE '\\'",
}
_TYPES = {
    "job_id": sa.Uuid,
    "min_followers": sa.BigInteger,
    "max_followers": sa.BigInteger,
    "verified": sa.Boolean,
    "has_email": sa.Boolean,
    "pattern": sa.Text,
}


@dataclass(frozen=True, slots=True)
class NarrowedPage:
    """An offset listing of the filtered, sorted set: ``{items, total, offset, limit,
    next_offset}``; ``total_capped`` when counting stopped at :data:`COUNT_CAP`."""

    items_json: str  # the page's creators, a JSON array as Postgres wrote it
    count: int
    total: int
    total_capped: bool
    more: bool
    offset: int
    limit: int

    @property
    def next_offset(self) -> int | None:
        return self.offset + self.count if self.more else None


def _where(filters: frozenset[str], table: str = "k") -> str:
    return "".join(f" AND {table}.{_CONDITIONS[name]}" for name in sorted(filters))


# Filters whose matches are counted per job by ``scraping_job_flag_counts``: a page narrowed by
# these alone has an exact total, read from at most four rows.
_FLAGS = frozenset({"verified", "has_email"})


def _exact_total(filters: frozenset[str]) -> bool:
    """Whether the page's total is exact at any size (the job's stored count, or the flag
    counts), rather than counted up to :data:`COUNT_CAP`."""
    return filters <= _FLAGS


# The rows a page's walk fetches: past ``offset``, the page and one more (there is more).
_NEED = ":offset + :limit + 1"

# Index entries a page of a follower range in discovery order walks before it turns to the
# range's own index (see :func:`_range_walk`).
RANGE_WALK = 10_000
_RANGE = frozenset({"min_followers", "max_followers"})


def _range_walk(filters: frozenset[str]) -> str:
    """The page's positions, for a follower range in discovery order (``sort=found``).

    Two plans fit and neither is always right: walking ``(job_id, ordinal)`` (the filters
    read from the index) costs ``matches needed / share of the job in range`` entries, taking
    the range from the followers index and sorting costs every creator in range. Postgres
    picks one from its estimate, and on a big job it picked the sort of all ~110k in range for
    a page of 50. So the walk runs first, over at most :data:`RANGE_WALK` entries (about a
    millisecond, index only); only when it found too few — on a first page, a range under
    ~0.5% of the job — does the range's index answer, and then it holds few creators by that
    very fact. A deep page (``offset`` up to 10,000) mostly takes the index, at the cost of
    sorting the creators in range."""
    need = _NEED
    where = _where(filters)
    return f"""
WITH walk AS (
  SELECT k.ordinal FROM (
    SELECT c.ordinal, c.followers, c.verified, c.has_email FROM scraping_job_creators AS c
    WHERE c.job_id = :job_id ORDER BY c.ordinal LIMIT {RANGE_WALK}
  ) AS k
  WHERE true{where}
  ORDER BY k.ordinal LIMIT {need}
),
walked AS (SELECT count(*) AS n FROM walk),
found AS (
  SELECT w.ordinal FROM walk AS w WHERE (SELECT n FROM walked) = {need}
  UNION ALL
  SELECT i.ordinal FROM (
    SELECT k.ordinal FROM scraping_job_creators AS k
    WHERE k.job_id = :job_id{where} AND (SELECT n FROM walked) < {need}
    ORDER BY k.ordinal + 0 LIMIT {need}
  ) AS i
)"""


# The page's slice of a walk: ``limit + 1`` past ``offset`` (the extra one says there is more).
_SLICE = "LIMIT :limit + 1 OFFSET :offset"


# Past the count's cap, the most index entries a page of ``q`` is expected to walk in its sort
# order to be taken that way (see :func:`_text_matches`); the walk stops at twice as many.
TEXT_WALK = 10_000


def _text_walk(filters: frozenset[str], sort: ResultsSort) -> str:
    """The page's rows by the walk of its sort's index, at most ``2 * TEXT_WALK`` entries:
    ``offset + limit + 1`` rows when the walk found that many, fewer when it did not. With
    ``q`` alone each entry's row is read for the text; beside other filters the walk is index
    only, those filters read from the index, and only the rows passing them are read."""
    order, others = _ORDER[sort], filters - {"q"}
    columns, passes = "c.search_text", f"k.{_CONDITIONS['q']}"
    if others:
        columns = "c.verified, c.has_email"
        passes = f"""true{_where(others)}
    AND (SELECT t.{_CONDITIONS["q"]} FROM scraping_job_creators AS t
          WHERE t.job_id = :job_id AND t.ordinal = k.ordinal)"""
    return f"""walk AS (
  SELECT k.ordinal, k.followers FROM (
    SELECT c.ordinal, c.followers, {columns} FROM scraping_job_creators AS c
    WHERE c.job_id = :job_id ORDER BY {order.format(t="c")} LIMIT {2 * TEXT_WALK}
  ) AS k
  WHERE {passes}
  ORDER BY {order.format(t="k")} LIMIT {_NEED}
)"""


# The sort orders written so that no index serves them: the page is sorted from every match.
_ORDER_UNINDEXED = {
    ResultsSort.found: "{t}.ordinal + 0",
    ResultsSort.followers_desc: "{t}.followers + 0 DESC NULLS LAST, {t}.ordinal",
    ResultsSort.followers_asc: "{t}.followers + 0 ASC NULLS LAST, {t}.ordinal",
}


def _text_matches(filters: frozenset[str], sort: ResultsSort) -> tuple[str, str, str]:
    """``(prefix, total, walk)`` of a page narrowed by ``q``.

    Counting reads the matches through the trigram index up to the cap, one heap visit each
    (the text is checked on the row), a job's first :data:`TEXT_BLOCK` creators first when it
    has more than two blocks (the index makes the bitmap of every candidate before a row is
    read: a common word on a 1M-creator job is counted from 1,171 candidates, not 17,858).
    With at most :data:`COUNT_CAP` matches, those rows are every match and the page is sorted
    from them, not read through the index again (a rare fragment on a 100k-creator job:
    3.5 ms against 5.3).

    Past the cap, walking the sort's index passes ``(offset + limit + 1) / share matching``
    entries, sorting every match reads each one. The planner's share for a substring comes
    from a sample and was off both ways on the seed's 1M-creator job (100 expected of 17,858
    for a keyword: every match sorted, 70 ms, where the walk takes 1.5). So the statement
    chooses from what the count just read: the cap's matches and the highest ordinal among
    them (rows are stored in discovery order) give the entries a walk would pass. Under
    :data:`TEXT_WALK` the page walks (:func:`_text_walk`); otherwise, or when the walk
    stopped short, it is sorted from every match. Either way the page is exact."""
    where, block = _where(filters), TEXT_BLOCK
    cap, need = COUNT_CAP, _NEED
    # A job of up to two blocks is read in one scan. A bigger one's first block is read first,
    # the rest (one scan: each costs ~0.5 ms beside its candidates) by the keys ``PICKED`` and
    # only while there are fewer than the cap; the keys name the job, so no job id is asked.
    # Text with no run has no key: one scan (a job that big refuses it, unless spread out).
    big = f"((SELECT ordinal FROM last) >= {2 * block} AND CAST(:runs AS text[]) <> '{{}}')"
    others = _where(filters - {"q"})
    reads = "\n  UNION ALL\n  ".join(
        f"(SELECT k.ordinal, k.followers FROM scraping_job_creators AS k\n    WHERE {part})"
        for part in (f"k.job_id = :job_id AND NOT {big}{where}",
                     f"k.job_id = :job_id AND k.ordinal / {block} = 0 AND {big}{where}",
                     f"k.ordinal >= {block} AND {big} AND {by_picked_keys(others)}")
    )  # fmt: skip
    prefix = f"""WITH last AS MATERIALIZED (
  SELECT max(b.ordinal) AS ordinal FROM scraping_job_creators AS b WHERE b.job_id = :job_id
), {PICKED}, m AS MATERIALIZED (
  {reads}
  LIMIT {cap + 1}
), matched AS (SELECT count(*) AS matches, coalesce(max(ordinal), 0) + 1 AS reach FROM m),
{_text_walk(filters, sort)}, walked AS (SELECT count(*) AS n FROM walk)"""
    past_cap = f"(SELECT matches FROM matched) > {cap}"
    walkable = (
        f"CAST({need} AS bigint) * (SELECT reach FROM matched)"
        f" <= {TEXT_WALK} * (SELECT matches FROM matched)"
    )
    # Each branch sorts and slices on its own: only the one whose conditions hold runs.
    walk = f"""(SELECT m.ordinal, m.followers FROM m WHERE (SELECT matches FROM matched) <= {cap}
           ORDER BY {_ORDER[sort].format(t="m")} {_SLICE})
          UNION ALL
          (SELECT w.ordinal, w.followers FROM walk AS w
            WHERE {past_cap} AND {walkable} AND (SELECT n FROM walked) = {need}
            ORDER BY {_ORDER[sort].format(t="w")} {_SLICE})
          UNION ALL
          (SELECT k.ordinal, k.followers FROM scraping_job_creators AS k
            WHERE k.job_id = :job_id{where}
              AND {past_cap} AND (NOT ({walkable}) OR (SELECT n FROM walked) < {need})
            ORDER BY {_ORDER_UNINDEXED[sort].format(t="k")} {_SLICE})"""
    return prefix, "(SELECT matches FROM matched)", walk


@cache
def _page_statement(filters: frozenset[str], sort: ResultsSort) -> sa.TextClause:
    """One statement per (filters, sort), built once: the caller resolved by Clerk id and the
    job's ownership checked inside it (no row: no such job of this live user), the total
    (exact when :func:`_exact_total`, else counted up to the cap), and the page — positions by
    an index walk past ``offset`` fetching ``limit + 1`` (the extra one only says there is
    more), then only the page's rows' creators, each by its ``(job_id, ordinal)`` (one probe
    per row, whatever the job's size)."""
    where = _where(filters)
    prefix = ""
    walk = f"""SELECT k.ordinal, k.followers FROM scraping_job_creators AS k
                 WHERE k.job_id = :job_id{where} ORDER BY {_ORDER[sort].format(t="k")} {_SLICE}"""
    if not filters:
        total = "j.processed_results"
    elif _exact_total(filters):
        total = (
            f"(SELECT coalesce(sum(f.creators), 0)::bigint FROM scraping_job_flag_counts AS f"
            f" WHERE f.job_id = :job_id{_where(filters, 'f')})"
        )
    elif "q" in filters:
        prefix, total, walk = _text_matches(filters, sort)
    else:
        total = (
            f"(SELECT count(*) FROM (SELECT FROM scraping_job_creators AS k"
            f" WHERE k.job_id = :job_id{where} LIMIT {COUNT_CAP + 1}) AS m)"
        )
        if sort is ResultsSort.found and filters & _RANGE:
            prefix = _range_walk(filters)
            walk = f"SELECT f.ordinal FROM found AS f ORDER BY f.ordinal {_SLICE}"
    # The walk skips ``offset`` entries, then only the page's rows are numbered: a window over
    # the walk itself would number every skipped entry too (2 of the 3 ms of a page at offset
    # 9,950).
    page_order = _ORDER[sort].format(t="s")
    positions = f"""SELECT s.ordinal, row_number() OVER (ORDER BY {page_order}) AS pos
          FROM ({walk}) AS s"""
    sql = f"""{prefix}
SELECT {total} AS total, p.n, p.items
FROM scraping_jobs AS j
JOIN users AS u ON u.id = j.user_id
CROSS JOIN LATERAL (
  SELECT count(*) AS n,
         jsonb_agg((SELECT r.creator FROM scraping_job_creators AS r
                     WHERE r.job_id = :job_id AND r.ordinal = w.ordinal) ORDER BY w.pos)
           FILTER (WHERE w.pos <= :limit)::text AS items
  FROM ({positions}) AS w
) AS p
WHERE j.id = :job_id AND u.user_id = :clerk_user_id AND u.deleted_at IS NULL
"""
    names = {"job_id"} | {("pattern" if f == "q" else f) for f in filters}
    return sa.text(sql).bindparams(*(sa.bindparam(n, type_=_TYPES[n]) for n in sorted(names)))


def _params(query: ResultsFilter) -> tuple[frozenset[str], dict[str, Any]]:
    params: dict[str, Any] = {}
    for name in ("min_followers", "max_followers", "verified", "has_email"):
        value = getattr(query, name)
        if value is not None:
            params[name] = value
    if query.q is not None:
        params["pattern"], params["runs"] = like_pattern(query.q), runs(query.q)
    filters = frozenset(n for n in _CONDITIONS if getattr(query, n) is not None)
    return filters, params


# A job's creators named by key, in the order asked (``from_job`` with ``creator_keys``): one
# probe of the ``(job_id, platform, creator_key)`` index per key; absent keys, creator NULL.
_BY_KEYS = DriverQuery(
    sa.text(
        """
SELECT w.key, k.creator::text AS creator
FROM unnest(CAST(:keys AS varchar[])) WITH ORDINALITY AS w(key, n)
LEFT JOIN scraping_job_creators AS k
  ON k.job_id = :job_id AND k.platform = :platform AND k.creator_key = w.key
ORDER BY w.n
"""
    ).bindparams(sa.bindparam("job_id", type_=sa.Uuid), sa.bindparam("platform", type_=sa.String))
)
_OWNED_JOB = DriverQuery(
    sa.text(
        "SELECT platform FROM scraping_jobs WHERE id = :job_id AND user_id = :user_id"
    ).bindparams(sa.bindparam("job_id", type_=sa.Uuid), sa.bindparam("user_id", type_=sa.Uuid))
)


# A statement with ``q`` is planned for each call (see ``DriverQuery``): planned without the
# values, the count drops the flags from its trigram index scan (8,000 rows read for 1,001).
@cache
def _page_query(filters: frozenset[str], sort: ResultsSort) -> DriverQuery:
    return DriverQuery(_page_statement(filters, sort), plan_each_call="q" in filters)


@cache
def _matching_query(filters: frozenset[str], sort: ResultsSort) -> DriverQuery:
    return DriverQuery(_matching_statement(filters, sort), plan_each_call="q" in filters)


def _matching_statement(filters: frozenset[str], sort: ResultsSort) -> sa.TextClause:
    """Creators ``[offset, offset + limit)`` of a job's narrowed, sorted set (``from_job``
    with ``all``), as ``(creator_key, creator)`` rows."""
    sql = f"""
SELECT k.creator_key AS key, k.creator::text AS creator
FROM scraping_job_creators AS k
WHERE k.job_id = :job_id{_where(filters)}
ORDER BY {_ORDER[sort].format(t="k")}
LIMIT :limit OFFSET :offset
"""
    names = {"job_id"} | {("pattern" if f == "q" else f) for f in filters}
    return sa.text(sql).bindparams(*(sa.bindparam(n, type_=_TYPES[n]) for n in sorted(names)))


class ResultsRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def narrowed_page(
        self, clerk_user_id: str, job_id: uuid.UUID, query: ResultsFilter, *, offset: int,
        limit: int,
    ) -> NarrowedPage | None:  # fmt: skip
        """A page of the caller's job narrowed by ``query``'s filters in its sort order (one
        statement), or None when the job does not exist or is another user's."""
        validate_window(offset, limit)
        if offset > MAX_NARROWED_OFFSET:
            raise InvalidPage(f"offset of a narrowed or sorted page is at most "
                              f"{MAX_NARROWED_OFFSET}, got {offset}.")  # fmt: skip
        filters, params = _params(query)
        params |= {"job_id": job_id, "clerk_user_id": clerk_user_id,
                   "offset": offset, "limit": limit}  # fmt: skip
        await refuse_short_text(self.session, query.q, job_id, clerk_user_id)
        row = await _page_query(filters, query.sort).first(self.session, params)
        if row is None:
            return None
        total, fetched, items = row
        more = fetched > limit
        count = min(fetched, limit)
        total, total_capped = (total, False) if _exact_total(filters) else capped(total)
        return NarrowedPage(items or "[]", count, total, total_capped, more, offset, limit)

    async def job_platform(self, user_id: uuid.UUID, job_id: uuid.UUID) -> str | None:
        """The platform of the user's job, or None when it is not theirs (or gone)."""
        return await _OWNED_JOB.scalar(self.session, {"job_id": job_id, "user_id": user_id})

    async def by_keys(
        self, job_id: uuid.UUID, platform: str, keys: list[str]
    ) -> list[tuple[str, str | None]]:
        """``(key, creator JSON or None)`` for each key, in the order given."""
        rows = await _BY_KEYS.all(
            self.session, {"job_id": job_id, "platform": platform, "keys": keys}
        )
        return [(key, creator) for key, creator in rows]

    async def matching(
        self, job_id: uuid.UUID, query: ResultsFilter, *, offset: int, limit: int
    ) -> list[tuple[str, str]]:
        """``(key, creator JSON)`` ``[offset, offset + limit)`` of the job's narrowed set."""
        filters, params = _params(query)
        params |= {"job_id": job_id, "offset": offset, "limit": limit}
        await refuse_short_text(self.session, query.q, job_id)
        rows = await _matching_query(filters, query.sort).all(self.session, params)
        return [(key, creator) for key, creator in rows]
