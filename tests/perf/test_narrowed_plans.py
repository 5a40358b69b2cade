"""A narrowed or sorted results page costs O(page), not O(job): each statement the repository
sends is run under ``EXPLAIN ANALYZE`` against a job of 30,000 creators, and the rows its plan
touches in ``scraping_job_creators`` stay within the page's bound — far below the job's size."""

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from services.scraping.repository import COUNT_CAP, NarrowedPage, ResultsRepository
from services.scraping.repository.results import RANGE_WALK
from services.scraping.repository.text import runs
from shared import sqltrace
from shared.db import DriverQuery, libpq_url, make_engine
from shared.models.scraping import TEXT_BLOCK
from shared.queries.sessions import read_session_factory, release
from shared.results import ResultsFilter, ResultsSort
from tooling import migrate

from ..factories import make_campaign, make_job, make_user
from ..support.sql import Executed, analyzed_plan, touched

JOB_SIZE = 30_000
LIMIT = 50
PAGE = LIMIT + 1  # the page and the row that says "there is more"

# Follower counts spread over the job; 1 in 8 verified, 1 in 5 with an e-mail; every 997th
# creator's bio holds a rare word, the others' a common one; `mail` is in the bios of 1 in 5
# of those with an e-mail and no others.
FILL = """
INSERT INTO scraping_job_creators (job_id, platform, creator_key, ordinal, creator)
SELECT :job, 'tiktok', 'k' || i, i, jsonb_build_object(
  'creator_key', 'k' || i, 'username', 'k' || i, 'display_name', 'Creator ' || i,
  'followers', (i * 7919) % 1000000, 'verified', i % 8 = 0,
  'emails', CASE WHEN i % 5 = 0 THEN '["a@b.io"]'::jsonb ELSE '[]'::jsonb END,
  'bio', CASE WHEN i % 997 = 0 THEN 'zanzibar sailing'
              WHEN i % 25 = 0 THEN 'food and travel, mail me' ELSE 'food and travel' END)
FROM generate_series(0, :size - 1) AS i
"""


def seq_scans(plan: dict[str, Any]) -> list[str]:
    found = [plan["Relation Name"]] if plan.get("Node Type") == "Seq Scan" else []
    for child in plan.get("Plans", []):
        found += seq_scans(child)
    return found


CASES = [
    # (filter, offset, bound on rows touched)
    (ResultsFilter(sort=ResultsSort.followers_desc), 0, 3 * PAGE),
    (ResultsFilter(sort=ResultsSort.followers_asc), 5_000, 5_000 + 3 * PAGE),
    (ResultsFilter(min_followers=990_000, sort=ResultsSort.followers_desc), 0, 3 * PAGE + 400),
    (ResultsFilter(max_followers=2_000, sort=ResultsSort.followers_asc), 0, 3 * PAGE + 400),
    # A range in discovery order: a wide one (1 in 5) is walked in the ordinal index; a narrow
    # one (1 in 1,000) walks at most RANGE_WALK entries, then its own index answers.
    (ResultsFilter(min_followers=100_000, max_followers=300_000), 0,
     5 * (PAGE + COUNT_CAP + 1) + 2 * PAGE),
    (ResultsFilter(min_followers=999_000), 0, RANGE_WALK + 4 * PAGE),
    # 1 in 8 verified: the walk passes ~8 entries per match; the count stops at the cap.
    (ResultsFilter(verified=True), 0, 8 * (PAGE + COUNT_CAP + 1) + 2 * PAGE),
    (ResultsFilter(has_email=True, sort=ResultsSort.followers_desc), 200,
     5 * (200 + PAGE + COUNT_CAP + 1) + 2 * PAGE),
    (ResultsFilter(q="zanzibar"), 0, 6 * (JOB_SIZE // 997 + 1)),
    (ResultsFilter(q="zanzibar", verified=False, sort=ResultsSort.followers_desc), 0,
     6 * (JOB_SIZE // 997 + 1)),
    # A word beside a flag: the count's bitmap holds every match and it reads the first
    # COUNT_CAP + 1; the page walks ~8, ~25 and ~5 index entries per match and reads the text
    # of those passing the flag, never every match. A row read by (job_id, ordinal) counts
    # twice when the planner reaches it through a bitmap (index node and heap node), so the
    # text checks and the page's own rows are bounded at two each. `mail` goes with
    # `has_email`, where the planner, taking them as independent, expects a fifth of the
    # 1,200 matches and would read and sort them all (4,645 rows).
    (ResultsFilter(q="food", verified=True), 0,
     JOB_SIZE // 8 + COUNT_CAP + 1 + 8 * PAGE + 2 * PAGE + 2 * PAGE),
    (ResultsFilter(q="mail", has_email=True), 0,
     JOB_SIZE // 25 + COUNT_CAP + 1 + 25 * PAGE + 2 * 5 * PAGE + 2 * PAGE),
    (ResultsFilter(q="mail"), 0, JOB_SIZE // 25 + COUNT_CAP + 1 + 25 * PAGE + 2 * PAGE),
    (ResultsFilter(q="travel", has_email=True, sort=ResultsSort.followers_desc), 0,
     JOB_SIZE // 5 + COUNT_CAP + 1 + 5 * PAGE + 2 * PAGE + 2 * PAGE),
]  # fmt: skip


@dataclass
class Seeded:
    engine: AsyncEngine
    clerk_id: str
    job_id: uuid.UUID


@asynccontextmanager
async def filled(scratch_database, *sizes: int) -> AsyncIterator[list[Seeded]]:
    """A migrated scratch database with one user's job per size, ``FILL``ed, committed and
    vacuumed (as a live table would be)."""
    url = scratch_database()
    migrate.upgrade(url, "head")
    engine = make_engine(url, pool_size=1)
    jobs = []
    async with AsyncSession(engine, expire_on_commit=False) as session, session.begin():
        for size in sizes:
            user = await make_user(session)
            job = await make_job(session, await make_campaign(session, user))
            await session.execute(sa.text(FILL), {"job": job.id, "size": size})
            job.processed_results = size
            jobs.append(Seeded(engine, user.user_id, job.id))
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE scraping_job_creators")
    try:
        yield jobs
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
async def seeded(scratch_database) -> AsyncIterator[Seeded]:
    """The job of ``JOB_SIZE`` creators beside another user's job as big, so the planner sees
    a table of many jobs."""
    async with filled(scratch_database, JOB_SIZE, JOB_SIZE) as jobs:
        yield jobs[0]


async def planned_page(
    seeded: Seeded, query: ResultsFilter, *, offset: int = 0, buffers: bool = False
) -> tuple[NarrowedPage, dict[str, Any]]:
    """The page of ``query`` at ``offset``, and its one statement's plan as it ran again."""
    executed = Executed()  # at the driver: every path is seen
    async with AsyncSession(seeded.engine) as session:
        await session.connection()  # connected first: only the page's statement is recorded
        with sqltrace.recording(seeded.engine, executed):
            page = await ResultsRepository(session).narrowed_page(
                seeded.clerk_id, seeded.job_id, query, offset=offset, limit=LIMIT
            )
        assert page is not None
        assert len(executed.calls) == 1  # caller, ownership, count and page in one statement
        return page, await analyzed_plan(session, *executed.calls[0], buffers=buffers)


@pytest.mark.parametrize("query,offset,bound", CASES, ids=lambda c: str(c)[:60])
async def test_a_narrowed_page_touches_rows_of_the_page_not_of_the_job(
    seeded, query, offset, bound
):
    assert bound < JOB_SIZE // 2  # the bound means something only well below the job's size
    page, plan = await planned_page(seeded, query, offset=offset)
    assert page.count == min(LIMIT, max(0, page.total - offset))
    assert "scraping_job_creators" not in seq_scans(plan)
    rows = touched(plan, "scraping_job_creators")
    assert rows <= bound, (rows, bound)


# A job past the text index's second block (the count of a smaller one reads it whole).
SPREAD_SIZE = 2 * TEXT_BLOCK + 1


@pytest.fixture(scope="module")
async def spread(scratch_database) -> AsyncIterator[Seeded]:
    """A job of ``SPREAD_SIZE`` creators, filled as the page cases' job is."""
    async with filled(scratch_database, SPREAD_SIZE) as jobs:
        yield jobs[0]


@pytest.mark.parametrize(
    "query", [ResultsFilter(q="mail"), ResultsFilter(q="mail", has_email=True)]
)
async def test_text_counted_to_the_cap_in_the_first_block_lists_no_candidate_past_it(spread, query):
    """On a job past two blocks, the count of ``q`` makes its bitmap of candidates from the
    job's first block of ``TEXT_BLOCK`` creators first; when that block holds the cap's
    matches (`mail` is in 1 in 25 bios, all of them with an e-mail), no candidate past it is
    listed, where a bitmap of the whole job lists 1 in 25 of ``SPREAD_SIZE``."""
    in_block = TEXT_BLOCK // 25 + 1
    assert in_block > COUNT_CAP
    page, plan = await planned_page(spread, query)
    assert page.total_capped and page.count == LIMIT
    listed = sum(
        node["Actual Rows"] * node["Actual Loops"] for node in nodes(plan)
        if node["Node Type"] == "Bitmap Index Scan"
    )  # fmt: skip
    assert 0 < listed <= in_block, (listed, in_block)


def nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    return [plan, *(n for child in plan.get("Plans", []) for n in nodes(child))]


_PICKS = DriverQuery(
    sa.text(
        "SELECT scraping_text_key_picks(:job, (SELECT max(ordinal) FROM scraping_job_creators"
        " WHERE job_id = :job), CAST(:runs AS text[]))"
    )
)


@pytest.mark.parametrize(
    "q,picks",
    [
        # `creator` is in every display name; `123` (1 in 90) and `234` (1 in 284) in none
        # sampled, so by name.
        ("Creator 1234", ["123", "234"]),
        # `zanzibar` is in 1 in 997 bios, none sampled: its three first runs by name. `mail`
        # is in 1 in 25 (`ail` in `sailing` too): `me` and the space make no run.
        ("zanzibar", ["anz", "bar", "iba"]),
        ("mail me", ["mai", "ail"]),
        # Every run is in more than half the creators: the one fewest hold, by name.
        ("food and travel", ["and"]),
    ],
)
async def test_a_big_job_is_looked_up_by_the_runs_few_of_its_creators_hold(spread, q, picks):
    """Of ``q``'s runs, a job past two blocks is looked up by the keys of the three that the
    fewest of a sample of its creators hold, among those at most half of them hold; each key
    names the job."""
    async with AsyncSession(spread.engine) as session:
        got = await _PICKS.scalar(session, {"job": spread.job_id, "runs": runs(q)})
    assert got == [f"{spread.job_id}{run}" for run in picks]


async def test_runs_every_creator_holds_cost_the_rest_of_a_big_job_nothing(spread):
    """Past the first block, `Creator 1234` (111 matches, so the whole job is read) costs the
    index the pages that `1234` alone does: the runs of `creator`, in every creator's name,
    are not looked up. With every run looked up, their posting lists cost several times as
    many."""

    async def index_pages(q: str) -> tuple[int, int]:
        page, plan = await planned_page(spread, ResultsFilter(q=q), buffers=True)
        assert not page.total_capped
        return page.total, sum(
            node["Shared Hit Blocks"] + node["Shared Read Blocks"] for node in nodes(plan)
            if node["Node Type"] == "Bitmap Index Scan" and node["Actual Loops"]
            and f"/ {TEXT_BLOCK})" not in node["Index Cond"]  # the rest, not the first block
        )  # fmt: skip

    (matches, named), (_, bare) = await index_pages("Creator 1234"), await index_pages("1234")
    assert matches == 111
    assert bare > 0 and named <= bare * 1.2, (named, bare)


async def test_the_rest_of_a_big_job_is_looked_up_by_keys_that_name_the_job(spread):
    """Past the first block, `Creator 1234` (111 matches) is looked up in the keyed index
    alone: its keys name the job, so no posting list of the job id (an entry for each of the
    job's creators) is decoded beside them. Through the text index, which intersects the job
    id's list with the runs', the rest's lookup read three times the index pages."""
    page, plan = await planned_page(spread, ResultsFilter(q="Creator 1234"))
    assert page.total == 111 and not page.total_capped
    rest = [
        node for node in nodes(plan) if node["Node Type"] == "Bitmap Index Scan"
        and node["Actual Loops"] and f"/ {TEXT_BLOCK})" not in node["Index Cond"]
    ]  # fmt: skip
    assert [node["Index Name"] for node in rest] == ["ix_scraping_job_creators_text_keys"]
    assert "job_id =" not in rest[0]["Index Cond"]


def test_the_cases_cover_every_sort_and_filter():
    used = {name for q, _, _ in CASES for name, v in q.model_dump().items() if v is not None}
    assert used >= set(ResultsFilter.model_fields)
    assert {q.sort for q, _, _ in CASES} == set(ResultsSort)


_PREPARED = DriverQuery(sa.text("SELECT statement FROM pg_prepared_statements"))


@pytest.mark.parametrize("reads", ["read pool", "transaction"])
async def test_a_text_search_is_planned_for_each_call_and_other_pages_are_prepared(seeded, reads):
    """psycopg prepares a statement it ran five times on a connection, and Postgres may then
    keep one generic plan for every value; a page with ``q`` never is, so each substring gets
    the plan its own selectivity calls for."""
    text = ResultsFilter(q="zanzibar")
    sorted_ = ResultsFilter(sort=ResultsSort.followers_desc)
    calls: list[str] = []

    def record(cursor, statement, parameters) -> None:
        calls.append(statement)

    engine = make_engine(seeded.engine.url.render_as_string(hide_password=False), pool_size=1)
    sessions = read_session_factory(engine) if reads == "read pool" else None
    try:
        async with AsyncSession(engine) as txn:
            session = sessions() if sessions else txn
            with sqltrace.recording(engine, record):
                for query in (text, sorted_):
                    for _ in range(8):
                        page = await ResultsRepository(session).narrowed_page(
                            seeded.clerk_id, seeded.job_id, query, offset=0, limit=LIMIT
                        )
                        assert page is not None and page.count > 0
            assert len(calls) == 16  # one statement a page
            prepared = {row[0] for row in await _PREPARED.all(session, {})}
            if sessions:
                await release(session)
    finally:
        await engine.dispose()
    # Postgres shows a prepared statement with $n parameters: tell the two pages apart by text.
    assert not [s for s in prepared if "search_text LIKE" in s]
    assert [s for s in prepared if "followers DESC NULLS LAST" in s and "LIKE" not in s]
