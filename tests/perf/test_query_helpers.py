"""The repositories' one-statement reads (results page, list page, dashboard) on seeded data."""

import uuid
from collections.abc import AsyncIterator

import orjson
import pytest

from services.campaign.repository import DashboardRepository, ListRepository
from services.scraping.repository import JobRepository
from shared.db import make_engine, session_factory
from shared.queries.pagination import InvalidPage
from shared.queries.sessions import read_session_factory


@pytest.fixture
async def session(perf_url) -> AsyncIterator:
    engine = make_engine(perf_url, pool_size=1)
    async with read_session_factory(engine)() as s:
        yield s
    await engine.dispose()


def _clerk(record, who="heavy_user"):
    return record[who]["clerk_id"]


def _ids(record):
    user = uuid.UUID(record["heavy_user"]["id"])
    return user, uuid.UUID(record["heavy_job"]["id"]), uuid.UUID(record["heavy_list"]["id"])


async def test_results_page_slices_across_batches(seeded, session):
    _, job, _ = _ids(seeded.record)
    user = _clerk(seeded.record)
    page = await JobRepository(session).results_page(
        user, job, offset=230, limit=50
    )  # batches 0 and 1
    assert [c["ordinal"] for c in orjson.loads(page.items_json)] == list(range(230, 280))
    assert (page.total, page.next_offset) == (1000, 280)
    last = await JobRepository(session).results_page(user, job, offset=980, limit=50)
    assert [c["ordinal"] for c in orjson.loads(last.items_json)] == list(range(980, 1000))
    assert last.next_offset is None
    past = await JobRepository(session).results_page(user, job, offset=5000, limit=10)
    assert orjson.loads(past.items_json) == [] and past.total == 1000


async def test_results_page_of_another_users_job_is_none(seeded, session):
    _, job, _ = _ids(seeded.record)
    other = _clerk(seeded.record, "ordinary_user")
    assert await JobRepository(session).results_page(other, job, offset=0, limit=10) is None
    with pytest.raises(InvalidPage):
        await JobRepository(session).results_page(other, job, offset=0, limit=10_000)


async def test_list_page_in_position_order_with_maintained_total(seeded, session):
    user, _, list_id = _ids(seeded.record)
    page = await ListRepository(session).items_page(user, list_id, page=2, page_size=20)
    assert page.total == seeded.record["heavy_list"]["items"] == 100
    assert [item.position for item in page.items] == list(range(20, 40))
    assert all(item.handle for item in page.items)
    shortlist = await ListRepository(session).items_page(user, list_id, page=1, page_size=100, bucket="shortlist")  # fmt: skip
    assert shortlist.total == len(shortlist.items) > 0
    assert {item.bucket for item in shortlist.items} == {"shortlist"}
    empty = await ListRepository(session).items_page(user, list_id, page=9, page_size=20)
    assert empty.items == [] and empty.total == 100
    other = uuid.UUID(seeded.record["ordinary_user"]["id"])
    assert await ListRepository(session).items_page(other, list_id, page=1, page_size=20) is None


async def test_dashboard_counts_match_the_tables(seeded, perf_url, conn):
    user, _, _ = _ids(seeded.record)
    engine = make_engine(perf_url, pool_size=1)
    try:
        async with session_factory(engine)() as s:
            board = await DashboardRepository(s).overview(user)
    finally:
        await engine.dispose()
    campaigns, lists = (
        conn.execute(f"SELECT count(*) FROM {t} WHERE user_id = %s{cond}", (user,)).fetchone()[0]
        for t, cond in (("campaigns", " AND deleted_at IS NULL"), ("creator_lists", ""))
    )
    assert board["campaigns"]["total"] == campaigns == seeded.record["heavy_user"]["campaigns"]
    assert board["lists"] == lists
    recent_jobs = conn.execute(
        "SELECT count(*), coalesce(sum(processed_results), 0) FROM scraping_jobs"
        # The dashboard's window: whole UTC days, today and the 29 before it.
        " WHERE user_id = %s AND created_at >= ((now() AT TIME ZONE 'UTC')::date - 29)"
        "::timestamp AT TIME ZONE 'UTC'",
        (user,),
    ).fetchone()
    assert board["searches_last_30_days"] == recent_jobs[0]
    assert board["creators_found_last_30_days"] == recent_jobs[1]
