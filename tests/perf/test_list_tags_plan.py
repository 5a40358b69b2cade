"""A page of a user's lists filtered by tags reads the page's lists, not the user's lists.

One user owns 6,000 lists, 1 in 3 tagged ``a`` and 1 in 3 ``b`` (1 in 6 both, the rest ``c``;
1 in 4 of the ``a``-only lists archived), so each tag holds more lists than a total counts;
20 other users own 2,000 more lists tagged ``a`` (half of them also ``b``), changed at times
interleaved with the user's, and 50,000 untagged ones (a table of many users, as a live one
is: in a table the user's lists filled, reading them all would be the cheap plan). After
VACUUM ANALYZE, ``ListRepository.page`` runs under ``EXPLAIN ANALYZE``:

- ``creator_lists`` is read by key only, for the page's lists only (page 2 and page 20: the
  offset's entries are passed in the index, their lists never read), never all the user's
  lists nor all those holding the tag;
- ``creator_list_tags`` only through ``ix_creator_list_tags_user_id_tag_newest``: the user's
  range of each tag, walked for the page (``offset + limit`` entries a tag and the archived
  ones passed) and for the total (its InitPlan), which stops after ``COUNT_CAP + 1`` entries a
  tag; never the other users' entries, nor all of the user's entries of a tag.

``touched`` counts the rows a plan's nodes on a table (or its indexes) produced or filtered
out, over all loops: a bitmap scan counts its index's rows and the heap's.
"""

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from services.campaign.repository import ListRepository
from shared import sqltrace
from shared.db import libpq_url, make_engine
from shared.queries.pagination import COUNT_CAP, capped
from tooling import migrate

from ..factories import make_user
from ..support.sql import Executed, analyzed_plan, touched

MINE = 6_000  # 2,000 tagged "a": more than a total counts
OTHER_USERS = 20
THEIRS = 100  # tagged lists per other user
UNTAGGED = 2_500  # and untagged ones: a table of many users
PAGE_SIZE = 20
T0 = datetime(2026, 1, 1, tzinfo=UTC)
INDEX = "ix_creator_list_tags_user_id_tag_newest"


def my_tags(i: int) -> list[str]:
    return {0: ["a"], 3: ["a", "b"], 1: ["b"]}.get(i % 6, ["c"])


def my_archived(i: int) -> bool:
    return i % 12 == 0  # a quarter of the lists tagged "a" only


# The user's list i is changed i seconds after T0; the others' lists in between.
FILL = """
INSERT INTO creator_lists (user_id, name, tags, is_archived, updated_at)
SELECT :user, 'mine ' || i,
  CASE i % 6 WHEN 0 THEN '["a"]' WHEN 3 THEN '["a", "b"]' WHEN 1 THEN '["b"]'
    ELSE '["c"]' END::jsonb,
  i % 12 = 0, :t0 + i * interval '1 second'
FROM generate_series(1, CAST(:mine AS int)) AS i;
INSERT INTO creator_lists (user_id, name, tags, updated_at)
SELECT u, 'theirs ' || i,
  CASE WHEN i % 2 = 0 THEN '["a", "b"]' ELSE '["a"]' END::jsonb,
  :t0 + (i * 1.5 - 0.5) * interval '1 second'
FROM unnest(CAST(:others AS uuid[])) AS u, generate_series(1, CAST(:theirs AS int)) AS i;
INSERT INTO creator_lists (user_id, name, updated_at)
SELECT u, 'untagged ' || i, :t0 + i * interval '1 second'
FROM unnest(CAST(:others AS uuid[])) AS u, generate_series(1, CAST(:untagged AS int)) AS i
"""


@dataclass
class Seeded:
    engine: AsyncEngine
    user_id: uuid.UUID


@pytest.fixture(scope="module")
async def seeded(scratch_database) -> AsyncIterator[Seeded]:
    url = scratch_database()
    migrate.upgrade(url, "head")
    engine = make_engine(url, pool_size=1)
    async with AsyncSession(engine, expire_on_commit=False) as session, session.begin():
        user = await make_user(session)
        others = [(await make_user(session, children=False)).id for _ in range(OTHER_USERS)]
        params = {
            "user": user.id,
            "others": others,
            "t0": T0,
            "mine": MINE,
            "theirs": THEIRS,
            "untagged": UNTAGGED,
        }
        for statement in FILL.split(";"):
            await session.execute(sa.text(statement), params)
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE creator_lists, creator_list_tags")
        counts = conn.execute(
            "SELECT count(*) FILTER (WHERE user_id = %s), count(*) FROM creator_list_tags"
            " WHERE tag = 'a'",
            (user.id,),
        ).fetchone()
    assert counts == (MINE // 3, MINE // 3 + OTHER_USERS * THEIRS)  # the triggers' entries
    yield Seeded(engine, user.id)
    await engine.dispose()


def expected(
    page: int, tags: list[str], any_tags: list[str], archived: bool | None
) -> tuple[list[str], int]:
    """The page's list names and how many of the user's lists match."""
    matches = [
        i
        for i in range(MINE, 0, -1)  # newest first
        if all(t in my_tags(i) for t in tags)
        and (not any_tags or any(t in my_tags(i) for t in any_tags))
        and (archived is None or my_archived(i) == archived)
    ]
    shown = matches[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    return [f"mine {i}" for i in shown], len(matches)


def nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    return [plan, *(n for child in plan.get("Plans", []) for n in nodes(child))]


def counted(plan: dict[str, Any], table: str) -> int:
    """Rows ``touched`` on ``table`` by the plan's InitPlans: the total's count."""
    if plan.get("Parent Relationship") == "InitPlan":
        return touched(plan, table)
    return sum(counted(child, table) for child in plan.get("Plans", []))


async def planned_page(
    seeded: Seeded, page: int, tags: list[str], any_tags: list[str], archived: bool | None
) -> dict[str, Any]:
    """Run the page (checking its lists and total), then its one statement under EXPLAIN
    ANALYZE: the plan as it ran."""
    executed = Executed()  # at the driver: every path is seen
    calls = executed.calls
    async with AsyncSession(seeded.engine) as session:
        await session.connection()  # connected first: only the page's statement is recorded
        with sqltrace.recording(seeded.engine, executed):
            found = await ListRepository(session).page(
                seeded.user_id, page=page, page_size=PAGE_SIZE, archived=archived,
                tags=tags, any_tags=any_tags,
            )  # fmt: skip
        names, matches = expected(page, tags, any_tags, archived)
        assert [item["name"] for item in found.items] == names
        assert capped(found.total) == (min(matches, COUNT_CAP), matches > COUNT_CAP)
        assert len(calls) == 1, [sql for sql, _ in calls]  # total and page in one statement
        return await analyzed_plan(session, *calls[0])


def assert_lists_read_by_key(plan: dict[str, Any], bound: int) -> None:
    lists = touched(plan, "creator_lists")
    assert lists <= bound, (lists, bound)
    scans = {n["Node Type"] for n in nodes(plan) if n.get("Relation Name") == "creator_lists"}
    assert scans <= {"Index Scan", "Index Only Scan"}, scans


CASES = [  # (tags, any_tags, archived, how many tags' entries the page walks)
    pytest.param(["a"], [], None, 1, id="tag=a"),
    pytest.param([], ["a", "b"], None, 2, id="any_tag=a,b"),
    pytest.param(["a"], [], False, 1, id="tag=a,live"),
    pytest.param([], ["a", "b"], False, 2, id="any_tag=a,b,live"),
]
PAGES = (2, 20)  # offset 20 and 380
COUNT_COUNTED = (COUNT_CAP + 1) * 4 // 3 + 1  # entries one tag's count may pass


@pytest.mark.parametrize("page", PAGES, ids=lambda p: f"page{p}")
@pytest.mark.parametrize("tags,any_tags,archived,walked", CASES)
async def test_a_tag_filtered_page_touches_the_pages_lists_not_the_users(
    seeded, tags, any_tags, archived, walked, page
):
    plan = await planned_page(seeded, page, tags, any_tags, archived)
    # The page's lists only, read by key, whatever the offset: not the lists the walks passed,
    # nor the user's 6,000, nor the 2,000 holding a tag.
    assert_lists_read_by_key(plan, 3 * PAGE_SIZE + 1)
    # Entries only through the (user, tag, newest) index, index-only (it includes whether the
    # list is archived), never the other users' 3,000.
    on_tags = [n for n in nodes(plan) if n.get("Relation Name") == "creator_list_tags"]
    assert on_tags and {n.get("Index Name") for n in on_tags} == {INDEX}, on_tags
    assert {n["Node Type"] for n in on_tags} == {"Index Only Scan"}, on_tags
    # The count stops after COUNT_CAP + 1 entries of each tag (passing a quarter more where
    # archived "a" lists are skipped), not at the user's 2,000 of each; the page's walks
    # read offset + limit entries of each tag and the archived ones they pass.
    total = counted(plan, "creator_list_tags")
    assert 0 < total <= walked * COUNT_COUNTED, total
    walks = touched(plan, "creator_list_tags") - total
    assert 0 < walks <= walked * 2 * page * PAGE_SIZE, walks


def test_the_bounds_mean_something():
    assert 3 * PAGE_SIZE + 1 < max(PAGES) * PAGE_SIZE < MINE // 3  # lists: the page's only
    assert COUNT_COUNTED < MINE // 3  # the count stops before the user's entries of a tag
