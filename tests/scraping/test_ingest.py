"""The one-statement ingest (``JobRepository.store_creators``): dedupe, cap, bounded gap-free
batches, the stored count from the database, and concurrent appends to one job."""

import asyncio
import uuid

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.scraping.providers import SearchPage, SyntheticProvider
from services.scraping.repository import JobRepository
from services.scraping.schemas import JobCreate
from services.scraping.service import JobService
from shared.events.catalogue import SearchWorkItem
from shared.models.scraping import RESULT_BATCH_MAX

from ..factories import make_campaign, make_job, make_user
from .conftest import job_body
from .test_concurrency import assert_consistent


def page(keys) -> list[tuple[str, dict]]:
    return [(f"c{k}", {"creator_key": f"c{k}", "n": k}) for k in keys]


async def batches(session, job_id) -> list[tuple[int, int, int, list[int]]]:
    rows = await session.execute(
        sa.text(
            "SELECT batch_no, first_ordinal, creator_count, creators FROM scraping_results"
            " WHERE job_id = :j ORDER BY first_ordinal"
        ),
        {"j": job_id},
    )
    return [(b, f, n, [c["n"] for c in cs]) for b, f, n, cs in rows]


async def test_a_page_is_deduped_capped_and_split_into_bounded_gap_free_batches(
    session, statements
):
    campaign = await make_campaign(session, await make_user(session))
    job = await make_job(session, campaign, target_results=1000)
    repo = JobRepository(session)
    assert await repo.store_creators(job.id, "tiktok", page(range(10)), 1000) == (10, 10)
    # 600 offered: 10 already stored, in-page repeats, 590 new → batches of 250, 250, 90.
    offered = page(range(600)) + page(range(595, 600))
    with statements.counting():
        added, stored = await repo.store_creators(job.id, "tiktok", offered, 1000)
    assert statements.count == 1
    assert (added, stored) == (590, 600)
    rows = await batches(session, job.id)
    assert [(b, f, n) for b, f, n, _ in rows] == [(0, 0, 10), (1, 10, 250), (2, 260, 250),
                                                 (3, 510, 90)]  # fmt: skip
    assert [k for *_, cs in rows for k in cs] == list(range(600))  # page order, no repeats
    assert all(n <= RESULT_BATCH_MAX for _, _, n, _ in rows)
    # The cap counts only new creators: 7 left, the first 7 new ones in page order are kept.
    capped = page(range(590, 700))
    assert await repo.store_creators(job.id, "tiktok", capped, 7) == (7, 607)
    assert (await batches(session, job.id))[-1][1:] == (600, 7, list(range(600, 607)))
    # Nothing new, or nothing allowed: no batch row, the count stays the database's.
    assert await repo.store_creators(job.id, "tiktok", page(range(50)), 100) == (0, 607)
    assert await repo.store_creators(job.id, "tiktok", page(range(900, 950)), 0) == (0, 607)
    assert len(await batches(session, job.id)) == 5
    # Another platform's key is a different creator (the key is per job AND platform).
    assert await repo.store_creators(job.id, "youtube", page(range(3)), 10) == (3, 610)


async def test_concurrent_overlapping_appends_to_one_job_store_each_creator_once(
    committed, account
):
    acct = await account()
    async with AsyncSession(committed, expire_on_commit=False) as session, session.begin():
        job = await make_job(session, acct.campaign, target_results=1000)

    async def append(keys) -> tuple[int, int]:
        async with AsyncSession(committed) as session, session.begin():
            repo = JobRepository(session)
            await repo.lock(job.id)
            remaining = 700 - await repo.stored_count(job.id)
            return await repo.store_creators(job.id, "tiktok", page(keys), remaining)

    # Twelve overlapping pages racing (like redelivered items): 0..899 offered, 700 allowed.
    results = await asyncio.gather(*(append(range(i * 75, i * 75 + 150)) for i in range(12)))
    assert sum(added for added, _ in results) == 700
    assert max(stored for _, stored in results) == 700
    async with committed.connect() as conn:
        rows = await batches(conn, job.id)
    ordinal = 0
    for _, first, count, creators in rows:
        assert first == ordinal and count == len(creators) <= RESULT_BATCH_MAX
        ordinal += count
    keys = [k for *_, cs in rows for k in cs]
    assert len(keys) == len(set(keys)) == 700
    assert [b for b, *_ in rows] == list(range(len(rows)))


class OnePage(SyntheticProvider):
    """One page of 120 creators, 100 distinct (20 repeats), then the source is exhausted."""

    async def search(self, query, cursor):
        one = (await super().search(query, None)).creators[0]
        creators = [one.model_copy(update={"creator_key": f"k{i % 100}"}) for i in range(120)]
        return SearchPage(creators, None)


async def test_one_page_of_work_is_a_handful_of_statements_and_counts_from_the_database(
    committed, account, statements
):
    acct = await account()
    body = JobCreate.model_validate(job_body(acct, keywords=["one"], target_results=1000))
    async with AsyncSession(committed, expire_on_commit=False) as session, session.begin():
        job = await JobService(session).insert(
            job_id=uuid.uuid4(), user_id=acct.user.id, body=body, reservation_id=None,
            provider="synthetic",
        )  # fmt: skip
    item = SearchWorkItem(job_id=job.id, cursor=0, keyword="one")
    async with AsyncSession(committed, expire_on_commit=False) as session, session.begin():
        with statements.counting():
            outcome = await JobService(session).handle_search(item, OnePage())
        # The job read, the job FOR UPDATE, and ONE statement for the page (creators, job,
        # completed event): nothing per creator, nothing per event.
        assert statements.count == 3, statements.statements
    assert (outcome.action, outcome.stored) == ("stored", 100)
    assert await assert_consistent(committed, job.id) == 100
    async with committed.connect() as conn:
        status, progress = (
            await conn.execute(
                sa.text("SELECT status, progress FROM scraping_jobs WHERE id = :j"), {"j": job.id}
            )
        ).one()
        events = (
            await conn.execute(
                sa.text("SELECT type, data FROM events WHERE aggregate_id = :j ORDER BY seq"),
                {"j": str(job.id)},
            )
        ).all()
    assert (status, progress) == ("completed", 100)
    # The source is exhausted and it was the only chain: no next item, no progress event.
    assert [t for t, _ in events] == ["scraping.job.created", "scraping.work.search",
                                      "scraping.job.completed"]  # fmt: skip
    ended = events[-1].data
    assert (ended["status"], ended["processed_results"]) == ("completed", 100)
    assert ended["job_id"] == str(job.id) and ended["user_id"] == str(acct.user.id)


class Pages(SyntheticProvider):
    """Page 0 offers creators k0..k9; page 1 offers k5..k19 (10 new, 5 repeats); every later
    page repeats page 1 (nothing new)."""

    async def search(self, query, cursor):
        one = (await super().search(query, None)).creators[0]
        p = min(int(cursor or 0), 1)
        keys = [f"k{i}" for i in range(p * 10 - 5 if p else 0, p * 10 + 10)]
        return SearchPage([one.model_copy(update={"creator_key": k}) for k in keys], str(p + 1))


async def test_a_work_item_schedules_the_next_page_reports_progress_and_ends_barren_chains(
    committed, account
):
    acct = await account()
    body = JobCreate.model_validate(job_body(acct, keywords=["aa", "bb"], target_results=1000))
    async with AsyncSession(committed, expire_on_commit=False) as session, session.begin():
        job = await JobService(session).insert(
            job_id=uuid.uuid4(), user_id=acct.user.id, body=body, reservation_id=None,
            provider="synthetic",
        )  # fmt: skip

    async def work(keyword: str, cursor: int) -> tuple[str, int]:
        item = SearchWorkItem(job_id=job.id, cursor=cursor, keyword=keyword)
        async with AsyncSession(committed) as session, session.begin():
            outcome = await JobService(session).handle_search(item, Pages())
        return outcome.action, outcome.stored

    async def state():
        async with committed.connect() as conn:
            job_row = (
                await conn.execute(
                    sa.text(
                        "SELECT status, processed_results, processed_runs, progress,"
                        " search_params -> 'chains' FROM scraping_jobs WHERE id = :j"
                    ),
                    {"j": job.id},
                )
            ).one()
            events = (
                await conn.execute(
                    sa.text(
                        "SELECT type, data FROM events WHERE aggregate_id = :j"
                        " AND type <> 'scraping.job.created' ORDER BY seq"
                    ),
                    {"j": str(job.id)},
                )
            ).all()
        return job_row, [(t, d) for t, d in events]

    assert await work("aa", 0) == ("stored", 10)
    (status, stored, runs, progress, chains), events = await state()
    assert (status, stored, runs, float(progress)) == ("processing", 10, 1, 1.0)
    assert chains["aa"] == {"page": 1, "cursor": "1", "done": False, "barren": 0}
    assert chains["bb"] == {"page": 0, "cursor": None, "done": False, "barren": 0}
    # The first work items of both chains, then chain a's next page and its progress.
    work_items = [d for t, d in events if t == "scraping.work.search"]
    assert [(d["keyword"], d["cursor"]) for d in work_items] == [("aa", 0), ("bb", 0), ("aa", 1)]
    assert events[-1] == (
        "scraping.job.progressed",
        {"job_id": str(job.id), "user_id": str(acct.user.id), "campaign_id": str(acct.campaign.id),
         "processed_results": 10, "target_results": 1000, "progress": 1.0},
    )  # fmt: skip
    # A redelivered item is stale: nothing stored, nothing emitted.
    assert await work("aa", 0) == ("stale", 0)
    assert (await state())[1] == events
    assert await work("aa", 1) == ("stored", 10)
    # Pages 2, 3, 4 of chain a add nobody: no progress events, and the third ends the chain.
    for cursor in (2, 3, 4):
        assert await work("aa", cursor) == ("stored", 0)
    (status, stored, runs, _, chains), later = await state()
    assert (status, stored, runs) == ("processing", 20, 5)
    assert chains["aa"] == {"page": 5, "cursor": "2", "done": True, "barren": 3}
    new = later[len(events) :]
    assert [t for t, _ in new] == ["scraping.work.search", "scraping.job.progressed"] + [
        "scraping.work.search"
    ] * 2  # pages 2..4 queued by pages 1..3, none after the chain ended
    assert await work("aa", 5) == ("stale", 0)
    # Chain bb offers only creators chain aa stored: three barren pages end it, and the last
    # chain ending completes the job (no next item after it).
    for cursor in (0, 1, 2):
        assert await work("bb", cursor) == ("stored", 0)
    (status, stored, _, progress, chains), final = await state()
    assert (status, stored, progress) == ("completed", 20, 100)
    assert chains["bb"] == {"page": 3, "cursor": "2", "done": True, "barren": 3}
    assert [t for t, _ in final[len(later) :]] == ["scraping.work.search"] * 2 + [
        "scraping.job.completed"
    ]
    assert final[-1] == (
        "scraping.job.completed",
        {"job_id": str(job.id), "user_id": str(acct.user.id), "campaign_id": str(acct.campaign.id),
         "status": "completed", "processed_results": 20, "reservation_id": None, "error": None},
    )  # fmt: skip
    assert await assert_consistent(committed, job.id) == 20
