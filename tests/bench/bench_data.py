"""Data-layer benchmarks, each beside its physical baseline in the same run.

1. Creator ingest with dedupe: the scraping service's path (job row lock, then
   ``store_creators``: INSERT … ON CONFLICT DO NOTHING on the dedupe key, bounded result rows
   and the stored count in one statement), 250 new creators per transaction plus 10% repeats,
   beside a raw COPY of the same rows.
2. Work items through ``JobService.handle_search`` (the worker's whole path: job read,
   provider page from an in-process fake, job lock, then one statement storing the page,
   moving the chain and the job, and writing the next work item and the progress events to the
   outbox; the consumer's inbox row is not included), jobs of 1,000 creators, provider pages
   of 20 and of 250 creators (10% repeats): one job at a time, and as many jobs at once as the
   worker's consumer handles together.
3. Cost growth: the results page (offset 0 and last page) in jobs of 1k, 10k and 100k creators,
   and campaigns page 1 for users with 10, 1k and 100k campaigns. Page cost should stay flat.
4. What the maintained rows cost the writes: a campaign insert, a list add and a rename of a
   tagged list, a job insert, a job's completion, a running job's progress update, a search's
   page of creators and a usage reservation's confirm, with the triggers on and off,
   interleaved.

Run: ``.venv/bin/python -m tests.bench.bench_data [--creators N] [--only PART] [--json]``. It creates and drops its own
database. Not a test (the machine's noise would make it flaky); figures go to docs/performance.md.
"""

import argparse
import asyncio
import statistics
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import orjson
import psycopg
import sqlalchemy as sa

from services.billing.service import usage
from services.campaign.repository import CampaignRepository, ListRepository
from services.campaign.schemas import ListUpdate
from services.campaign.service import PROFILE_FIELDS, update_list
from services.scraping.creators import Creator
from services.scraping.providers import SearchPage
from services.scraping.repository import JobRepository, ResultsRepository
from services.scraping.service import JobService
from services.scraping.worker import SEARCH_OPTIONS
from shared.db import libpq_url, make_engine, session_factory, transaction
from shared.events.catalogue import SearchWorkItem, UsageReleaseRequest
from shared.models import Campaign, ScrapingJob
from shared.models.scraping import RESULT_BATCH_MAX
from shared.queries.sessions import read_session_factory
from shared.results import ResultsFilter, ResultsSort
from shared.settings import LOCAL_POSTGRES_URL
from tooling import migrate

from .bench_events import create_database, drop_database


def _creator(i: int) -> dict:
    key = f"creator{i}"
    return {
        "creator_key": key, "username": key, "platform": "tiktok", "bio": "food and travel",
        "followers": 1000 + (i * 7919) % 900_000, "verified": i % 8 == 0,
        "emails": [f"{key}@x.io"] if i % 5 == 0 else [], "er": 3.2,
    }  # fmt: skip


def _setup(url: str, jobs: int, campaigns_for: tuple[int, ...] = ()) -> tuple[uuid.UUID, list]:
    """One user per campaign-count in ``campaigns_for`` (+1), and ``jobs`` empty jobs."""
    with psycopg.connect(url) as conn:
        user = conn.execute(
            "INSERT INTO users (user_id, email) VALUES ('user_bench', 'b@example.com') RETURNING id"
        ).fetchone()[0]
        campaign = conn.execute(
            "INSERT INTO campaigns (user_id, name) VALUES (%s, 'bench') RETURNING id", (user,)
        ).fetchone()[0]
        job_ids = [
            conn.execute(
                "INSERT INTO scraping_jobs (user_id, campaign_id, platform, keywords)"
                " VALUES (%s, %s, 'tiktok', '[\"bench\"]') RETURNING id",
                (user, campaign),
            ).fetchone()[0]
            for _ in range(jobs)
        ]
        owners = []
        for n in campaigns_for:
            owner = conn.execute(
                "INSERT INTO users (user_id) VALUES (%s) RETURNING id", (f"user_bench_{n}",)
            ).fetchone()[0]
            with conn.cursor().copy("COPY campaigns (user_id, name, created_at) FROM STDIN") as cp:
                for i in range(n):
                    cp.write_row((owner, f"c{i}", "2026-01-01T00:00:00Z"))
            owners.append((n, owner))
    return user, job_ids, owners


async def ingest(url: str, creators: int) -> tuple[float, float]:
    """(creators/s through the scraping repository, creators/s by raw COPY)."""
    _, (ours, theirs), _ = _setup(url, 2)
    engine = make_engine(url, pool_size=2)
    factory = session_factory(engine)
    started = time.perf_counter()
    offered = 0
    for start in range(0, creators, RESULT_BATCH_MAX):
        # 10% of each batch repeats creators already stored: dedupe has work to do.
        ids = range(start, start + RESULT_BATCH_MAX)
        repeats = range(max(0, start - 25), start) if start else range(0)
        batch = [_creator(i) for i in (*repeats, *ids)]
        offered += len(batch)
        async with transaction(factory) as session:
            repo = JobRepository(session)
            await repo.lock(ours)
            pairs = [(c["creator_key"], c) for c in batch]
            added, stored = await repo.store_creators(ours, "tiktok", pairs, 10**9)
            assert added == len(ids) and stored == start + len(ids)
    ours_rate = creators / (time.perf_counter() - started)
    await engine.dispose()

    started = time.perf_counter()

    with psycopg.connect(url) as conn, conn.cursor() as cur:
        with cur.copy(
            "COPY scraping_job_creators (job_id, platform, creator_key, ordinal, creator) FROM STDIN"
        ) as cp:
            for i in range(creators):
                cp.write_row(
                    (theirs, "tiktok", f"creator{i}", i, orjson.dumps(_creator(i)).decode())
                )
        with cur.copy(
            "COPY scraping_results (job_id, batch_no, first_ordinal, creator_count, creators) FROM STDIN"
        ) as cp:
            for b, first in enumerate(range(0, creators, RESULT_BATCH_MAX)):
                chunk = [_creator(i) for i in range(first, min(creators, first + RESULT_BATCH_MAX))]
                cp.write_row((theirs, b, first, len(chunk), orjson.dumps(chunk).decode()))
    theirs_rate = creators / (time.perf_counter() - started)
    return ours_rate, theirs_rate


class _Pages:
    """An in-process provider fake: page ``p`` holds ``size`` creators, 10% repeats of page p-1."""

    name = "bench"

    def __init__(self, size: int) -> None:
        self.size = size
        self.made: dict[int, list[Creator]] = {}

    def page(self, p: int) -> list[Creator]:
        if p not in self.made:
            new = range(p * self.size, (p + 1) * self.size - self.size // 10)
            old = range((p - 1) * self.size, (p - 1) * self.size + self.size // 10)
            self.made[p] = [
                Creator(platform="tiktok", creator_key=f"creator{i}", external_id=str(i),
                        username=f"creator{i}", followers=1000 + i, source="bench")
                for i in (*new, *old)
            ]  # fmt: skip
        return self.made[p]

    async def search(self, query, cursor):
        p = int(cursor or 0)
        return SearchPage(self.page(p), str(p + 1))


async def work_items(url: str, page_size: int, at_once: int = 1) -> float:
    """Creators/s stored by ``handle_search``, one work item per transaction (a chain ends
    after 50 pages, so a job with pages of 20 stops at 50 x 18 new = 900 creators), with
    ``at_once`` jobs in flight: 1, or as many as the worker's consumer runs together (it
    fetches up to ``SEARCH_OPTIONS["batch"]`` work items and handles them concurrently; a job's
    own items follow one another, each emitting the next)."""
    _, job_ids, _ = _setup(url, 10 if at_once == 1 else 2 * at_once)
    with psycopg.connect(url) as conn:
        conn.execute(
            "UPDATE scraping_jobs SET target_results = 1000, search_params = %s",
            (orjson.dumps({"provider": "bench", "chains": {"bench": {
                "page": 0, "cursor": None, "done": False, "barren": 0}}}).decode(),),
        )  # fmt: skip
    provider = _Pages(page_size)
    for p in range(1000 // page_size + 2):
        provider.page(p)  # build the pages before the clock starts
    engine = make_engine(url)  # the worker's pool (DB_POOL_SIZE)
    factory = session_factory(engine)
    stored = 0
    slots = asyncio.Semaphore(at_once)

    async def run(job_id: uuid.UUID) -> None:
        nonlocal stored
        async with slots:
            page, outcome = 0, "stored"
            while outcome == "stored":
                item = SearchWorkItem(job_id=job_id, cursor=page, keyword="bench")
                async with transaction(factory) as session:
                    result = await JobService(session).handle_search(item, provider)
                outcome, stored, page = result.action, stored + result.stored, page + 1

    started = time.perf_counter()
    await asyncio.gather(*(run(job_id) for job_id in job_ids))
    rate = stored / (time.perf_counter() - started)
    await engine.dispose()
    return rate


async def _p50(call, n: int = 200) -> float:
    for _ in range(20):
        await call()
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - t) * 1000)
    return statistics.median(samples)


async def growth(url: str) -> dict:
    sizes = (1_000, 10_000, 100_000)
    campaign_counts = (10, 1_000, 100_000)
    _, jobs, owners = _setup(url, len(sizes), campaign_counts)
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        for job, size in zip(jobs, sizes, strict=True):
            with cur.copy(
                "COPY scraping_results (job_id, batch_no, first_ordinal, creator_count, creators) FROM STDIN"
            ) as cp:
                for b, first in enumerate(range(0, size, RESULT_BATCH_MAX)):
                    chunk = [_creator(i) for i in range(first, first + RESULT_BATCH_MAX)]
                    cp.write_row((job, b, first, len(chunk), orjson.dumps(chunk).decode()))
            with cur.copy(
                "COPY scraping_job_creators (job_id, platform, creator_key, ordinal, creator)"
                " FROM STDIN"
            ) as cp:
                for i in range(size):
                    cp.write_row(
                        (job, "tiktok", f"creator{i}", i, orjson.dumps(_creator(i)).decode())
                    )
            cur.execute(
                "UPDATE scraping_jobs SET processed_results = %s WHERE id = %s", (size, job)
            )
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE scraping_results")
        conn.execute("VACUUM ANALYZE scraping_job_creators")
        conn.execute("VACUUM ANALYZE campaigns")
    engine = make_engine(url, pool_size=1)
    reads = read_session_factory(engine)

    async def page(**kw):
        async with reads() as s:
            await JobRepository(s).results_page("user_bench", **kw)

    out: dict = {"results_page_p50_ms": {}, "campaigns_page_p50_ms": {}}
    print("results page (50 creators), p50 ms")
    for job, size in zip(jobs, sizes, strict=True):
        first = await _p50(lambda job=job: page(job_id=job, offset=0, limit=50))
        last = await _p50(lambda job=job, size=size: page(job_id=job, offset=size - 50, limit=50))
        print(f"  job of {size:>7,}: offset 0 {first:.3f}   last page {last:.3f}")
        out["results_page_p50_ms"][size] = {"offset_0": round(first, 3), "last": round(last, 3)}

    async def narrowed(job, query):
        async with reads() as s:
            await ResultsRepository(s).narrowed_page("user_bench", job, query, offset=0, limit=50)

    print("narrowed results page (50 creators), p50 ms")
    queries = {
        "followers_desc": ResultsFilter(sort=ResultsSort.followers_desc),
        "verified": ResultsFilter(verified=True),
        "q + email, followers_asc": ResultsFilter(q="creator12", has_email=True,
                                                 sort=ResultsSort.followers_asc),
    }  # fmt: skip
    for job, size in zip(jobs, sizes, strict=True):
        figures = [
            f"{name} {await _p50(lambda job=job, q=q: narrowed(job, q)):.3f}"
            for name, q in queries.items()
        ]
        print(f"  job of {size:>7,}: " + "   ".join(figures))

    async def campaigns(owner, page_no=1):
        async with reads() as s:
            await CampaignRepository(s).page(owner, page=page_no, page_size=20)

    print("campaigns page 1 (20 of N, with total), p50 ms")
    for n, owner in owners:
        cost = await _p50(lambda owner=owner: campaigns(owner))
        print(f"  {n:>7,} campaigns: {cost:.3f}")
        out["campaigns_page_p50_ms"][n] = round(cost, 3)
    first, last = out["campaigns_page_p50_ms"][10], out["campaigns_page_p50_ms"][100_000]
    print(f"  growth 10 -> 100k campaigns: {last / first:.2f}x")
    await engine.dispose()
    return out


# The counters' triggers, switched off for the baseline half of ``writes``.
STATS_TRIGGERS = {
    "campaigns": ("trg_campaigns_stats_insert", "trg_campaigns_stats_update",
                  "trg_campaigns_stats_delete"),
    "list_items": ("trg_list_items_stats_insert", "trg_list_items_stats_update",
                   "trg_list_items_stats_delete"),
    # creator_list_tags (GET /lists?tag=): a tagged list's entries follow its updated_at
    "creator_lists": ("trg_creator_lists_tags_insert", "trg_creator_lists_tags_update"),
    # scraping_user_days (the dashboard's days) and scraping_job_keywords (GET /jobs?keyword=)
    "scraping_jobs": ("trg_scraping_jobs_days_insert", "trg_scraping_jobs_days_update",
                      "trg_scraping_jobs_days_delete", "trg_scraping_jobs_keywords_insert",
                      "trg_scraping_jobs_keywords_update"),
    # scraping_job_flag_counts (the exact total of a page narrowed by verified / has_email)
    "scraping_job_creators": ("trg_scraping_job_creators_flags_insert",
                              "trg_scraping_job_creators_flags_update",
                              "trg_scraping_job_creators_flags_delete"),
    # billing_usage_months (GET /billing/usage/history)
    "usage_reservations": ("trg_usage_reservations_months_insert",
                           "trg_usage_reservations_months_update",
                           "trg_usage_reservations_months_delete"),
}  # fmt: skip


async def writes(url: str, n: int = 300) -> dict:
    """What the per-user counters cost the writes they follow: a campaign insert (the
    repository's flush, then COMMIT) and a 20-creator list add (``ListRepository.add_items``)
    and a rename (``PATCH /lists/{id}``'s ``update_list``) of a list holding three tags, for a
    user with 1k campaigns and lists; a job insert (two keywords), a job's completion
    and a running job's progress update (what ``JobService`` writes to the job row, under
    its lock), and a reservation's confirm (``usage.release`` of a hold, 1,000 each way),
    each in its own transaction; a page of 20 new creators stored by a search's store
    statement (under the job's lock, as a work item does); with the triggers on and off,
    interleaved."""
    user, _, _ = _setup(url, 0, (1_000,))
    with psycopg.connect(url) as conn:
        list_id = conn.execute(
            "INSERT INTO creator_lists (user_id, name, tags)"
            ' VALUES (%s, \'bench\', \'["fitness", "yoga", "travel"]\') RETURNING id',
            (user,),
        ).fetchone()[0]
        campaign = conn.execute("SELECT id FROM campaigns WHERE user_id = %s", (user,)).fetchone()[
            0
        ]
        conn.execute("INSERT INTO user_usage (user_id) VALUES (%s)", (user,))
    toggle = await psycopg.AsyncConnection.connect(url, autocommit=True)
    engine = make_engine(url, pool_size=1)
    factory = session_factory(engine)
    counter = iter(range(10**9))

    async def switch(on: bool) -> None:
        verb = "ENABLE" if on else "DISABLE"
        for table, names in STATS_TRIGGERS.items():
            for name in names:
                await toggle.execute(f"ALTER TABLE {table} {verb} TRIGGER {name}")

    def timed(call):
        async def run() -> float:
            t = time.perf_counter()
            await call()
            return (time.perf_counter() - t) * 1000

        return run

    @timed
    async def create() -> None:
        async with transaction(factory) as session:
            await CampaignRepository(session).add(Campaign(user_id=user, name="w"))

    @timed
    async def add_items() -> None:
        k = next(counter)
        rows = [{"platform": "tiktok", "external_id": f"w{k}-{i}", "handle": f"w{k}-{i}"}
                for i in range(20)]  # fmt: skip
        profiles = [{f: r.get(f) for f in PROFILE_FIELDS} for r in rows]
        items = [{"ord": i, "platform": r["platform"], "external_id": r["external_id"],
                  "bucket": "backlog", "pinned": False} for i, r in enumerate(rows)]  # fmt: skip
        async with transaction(factory) as session:
            repository = ListRepository(session)
            await repository.add_profiles(profiles)
            await repository.add_items(list_id, user, items)

    @timed
    async def rename() -> None:
        async with transaction(factory) as session:
            body = ListUpdate(name=f"bench {next(counter)}")
            await update_list(session, user, list_id, body)

    async def new_job() -> uuid.UUID:
        async with transaction(factory) as session:
            job = ScrapingJob(user_id=user, campaign_id=campaign, platform="tiktok",
                              keywords=["fitness", "yoga"], target_results=100)  # fmt: skip
            return (await JobRepository(session).add(job)).id

    async def update_job(job_id: uuid.UUID, **values) -> float:
        t = time.perf_counter()
        async with transaction(factory) as session:
            job = await JobRepository(session).lock(job_id)
            for key, value in values.items():
                setattr(job, key, value)
        return (time.perf_counter() - t) * 1000

    running = await new_job()

    async def job_insert() -> float:
        t = time.perf_counter()
        await new_job()
        return (time.perf_counter() - t) * 1000

    async def job_completion() -> float:
        job_id = await new_job()
        return await update_job(job_id, status="completed", processed_results=100,
                                progress=Decimal(100), completed_at=datetime.now(UTC))  # fmt: skip

    async def job_progress() -> float:
        k = next(counter)
        return await update_job(running, status="processing", processed_results=k % 100,
                                progress=Decimal(k % 100))  # fmt: skip

    storing = await new_job()

    @timed
    async def store_page() -> None:
        k = next(counter)
        page = [(f"w{k}-{i}", {**_creator(i), "creator_key": f"w{k}-{i}"}) for i in range(20)]
        async with transaction(factory) as session:
            repository = JobRepository(session)
            await repository.lock(storing)
            await repository.store_creators(storing, "tiktok", page, 10**9)

    async def confirm() -> float:
        async with transaction(factory) as session:
            reservation = await session.scalar(
                sa.text(
                    "INSERT INTO usage_reservations (user_id, resource, amount, idempotency_key,"
                    " expires_at) VALUES (:u, 'creators', 100, :k, now() + interval '1 hour')"
                    " RETURNING id"
                ),
                {"u": user, "k": f"bench:{next(counter)}"},
            )
        t = time.perf_counter()
        async with transaction(factory) as session:
            request = UsageReleaseRequest(reservation_id=reservation, used_amount=60)
            await usage.release(session, request)
        return (time.perf_counter() - t) * 1000

    out = {}
    for name, call, rounds in (("campaign create", create, n // 10),
                               ("list add, 20 creators", add_items, n // 10),
                               ("list rename", rename, n // 10),
                               ("job insert", job_insert, n // 10),
                               ("job completion", job_completion, n // 10),
                               ("running job's progress", job_progress, n // 10),
                               ("creators stored, page of 20", store_page, n // 10),
                               ("reservation confirm", confirm, 100)):  # fmt: skip
        on, off = [], []
        for _ in range(20):
            await call()
        for _ in range(rounds):
            for enabled, samples in ((True, on), (False, off)):
                await switch(enabled)
                for _ in range(10):
                    samples.append(await call())
        await switch(True)
        with_, without = statistics.median(on), statistics.median(off)
        print(f"{name}: with counters {with_:.3f} ms   without {without:.3f} ms"
              f"   ({with_ - without:+.3f} ms)")  # fmt: skip
        out[name] = {"with_counters_p50_ms": round(with_, 3),
                     "without_p50_ms": round(without, 3)}  # fmt: skip
    await toggle.close()
    await engine.dispose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--creators", type=int, default=50_000)
    parser.add_argument("--only", choices=("ingest", "work", "growth", "writes"), action="append")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON at the end")
    args = parser.parse_args()
    only = set(args.only or ("ingest", "work", "growth", "writes"))
    name = f"scout_bench_{uuid.uuid4().hex[:8]}"
    results: dict = {}

    def fresh() -> str:
        drop_database(LOCAL_POSTGRES_URL, name)
        url = create_database(LOCAL_POSTGRES_URL, name)
        migrate.upgrade(url, "head")
        return libpq_url(url)

    try:
        if "ingest" in only:
            ours, theirs = asyncio.run(ingest(fresh(), args.creators))
            print(f"ingest with dedupe: {ours:,.0f} creators/s   raw COPY: {theirs:,.0f} creators/s"
                  f"   ratio {ours / theirs:.2f}")  # fmt: skip
            results["ingest"] = {"scout_per_s": round(ours), "copy_per_s": round(theirs)}
        if "work" in only:
            for size in (20, 250):
                for at_once in (1, SEARCH_OPTIONS["batch"]):
                    rate = asyncio.run(work_items(fresh(), size, at_once))
                    print(f"work items (handle_search), pages of {size}, {at_once} at once:"
                          f" {rate:,.0f} creators/s")  # fmt: skip
                    results[f"work_items_pages_of_{size}_{at_once}_at_once_per_s"] = round(rate)
        if "growth" in only:
            results["growth"] = asyncio.run(growth(fresh()))
        if "writes" in only:
            results["writes"] = asyncio.run(writes(fresh()))
    finally:
        drop_database(LOCAL_POSTGRES_URL, name)
    if args.json:
        print(orjson.dumps(results, option=orjson.OPT_NON_STR_KEYS).decode())


if __name__ == "__main__":
    main()
