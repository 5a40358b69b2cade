"""``scout db perf``: every seed query pattern through Scout's data layer and as raw psycopg.

Each pattern calls the very repository method (or shared query helper) a route or handler
runs, imported from where that route gets it, so every figure is a figure of production code.

For each pattern the data-layer call runs once while a cursor hook records the exact SQL and
parameters it sends; that recording is the baseline, replayed on a raw psycopg connection (a
statement Scout plans for each call, ``shared.db.PLANNED_EACH_CALL``, unprepared as well). The
two are then timed interleaved (data layer, baseline, data layer, …) so machine noise lands on
both alike. Each recorded statement is also EXPLAINed: a sequential scan on a big table fails
the pattern's plan check.

One data-layer call is what a read request does: a session from
``shared.queries.sessions.read_session_factory`` (autocommit: every read measured here is one
statement), the call, the session's close. ``txn_p50_ms`` is the same call on a default
transactional session (``BEGIN`` … ``ROLLBACK``, what ``shared.web.SessionDep`` opens), on a
connection of its own.
"""

import asyncio
import re
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import psycopg
from sqlalchemy.ext.asyncio import AsyncSession

from services.billing.repository import usage_history
from services.campaign.repository import CampaignRepository, DashboardRepository, ListRepository
from services.scraping.repository import JobRepository, ResultsRepository
from services.scraping.schemas import MAX_NARROWED_OFFSET
from shared import sqltrace
from shared.db import (
    PLANNED_EACH_CALL,
    SESSION_OPTIONS,
    libpq_url,
    make_engine,
    session_factory,
)
from shared.queries import users
from shared.queries.sessions import read_session_factory, release
from shared.results import ResultsFilter, ResultsSort
from tooling.perf.seeding.searches import creator_key

# A table counts as big for the plan check when the planner expects at least this many rows.
BIG_TABLE_ROWS = 10_000
PAGE_SIZE = 20
RESULTS_LIMIT = 50

Call = Callable[[AsyncSession], Awaitable[Any]]


@dataclass
class Pattern:
    name: str
    call: Call
    note: str = ""


@dataclass
class Measurement:
    pattern: str
    p50_ms: float
    p99_ms: float
    baseline_p50_ms: float
    baseline_p99_ms: float
    ratio: float
    txn_p50_ms: float
    statements: int
    plan_ok: bool
    seq_scans: list[str] = field(default_factory=list)
    note: str = ""

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def patterns_for(record: dict[str, Any]) -> list[Pattern]:
    """The seed's query patterns, aimed at the rows the seed record names."""
    heavy = uuid.UUID(record["heavy_user"]["id"])
    heavy_clerk = record["heavy_user"]["clerk_id"]
    heavy_campaigns = record["heavy_user"]["campaigns"]
    deep_page = max(1, heavy_campaigns // PAGE_SIZE - 1)
    # The page farthest from both ends: each page is walked from the nearer one.
    middle_page = max(1, heavy_campaigns // PAGE_SIZE // 2)
    job = uuid.UUID(record["heavy_job"]["id"])
    deep_offset = max(0, record["heavy_job"]["creators"] - RESULTS_LIMIT)  # the last page
    heavy_list = uuid.UUID(record["heavy_list"]["id"])
    # 500 keys of the heavy job spread over it, and 50 it does not hold.
    step = max(1, record["heavy_job"]["creators"] // 450)
    keys = [creator_key(0, i) for i in range(0, record["heavy_job"]["creators"], step)][:450]
    keys += [f"absent{i}" for i in range(500 - len(keys))]
    summary_campaign = uuid.UUID(record["summary_campaign"])
    return [
        # identity: GET /me (services.identity.service.ensure_profile)
        Pattern(
            "profile by clerk id",
            lambda s: users.get_user_profile(s, record["ordinary_user"]["clerk_id"]),
        ),
        # billing: the Stripe webhooks' user lookup (services.billing.subscriptions.find_user)
        Pattern(
            "profile by stripe customer",
            lambda s: users.get_user_by_stripe_customer_id(s, record["stripe_customer_id"]),
        ),
        # campaign: GET /campaigns
        Pattern(
            "campaigns page 1",
            lambda s: CampaignRepository(s).page(heavy, page=1, page_size=PAGE_SIZE, status=None),
            f"heaviest user, {heavy_campaigns} campaigns",
        ),
        Pattern(
            "campaigns deep page",
            lambda s: CampaignRepository(s).page(
                heavy, page=deep_page, page_size=PAGE_SIZE, status=None
            ),
            f"page {deep_page}",
        ),
        Pattern(
            "campaigns middle page",
            lambda s: CampaignRepository(s).page(
                heavy, page=middle_page, page_size=PAGE_SIZE, status=None
            ),
            f"page {middle_page}",
        ),
        # campaign: GET /campaigns?include=jobs (selectinload: the page, then its jobs)
        Pattern(
            "campaigns with jobs",
            lambda s: CampaignRepository(s).page_with_jobs(heavy, page=1, page_size=PAGE_SIZE),
            "heaviest user, page 1 and every job of its campaigns",
        ),
        # campaign: GET /campaigns/{id}
        Pattern(
            "campaign job summary",
            lambda s: CampaignRepository(s).job_summary(summary_campaign),
        ),
        # scraping: GET /jobs?keyword=
        Pattern(
            "jobs by keyword",
            lambda s: JobRepository(s).page(
                heavy, keyword=record["keyword"], page=1, page_size=PAGE_SIZE
            ),
        ),
        # scraping: GET /jobs/{id}/results
        Pattern(
            "results page offset 0",
            lambda s: JobRepository(s).results_page(
                heavy_clerk, job, offset=0, limit=RESULTS_LIMIT
            ),
            f"job of {record['heavy_job']['creators']} creators",
        ),
        Pattern(
            "results page deep",
            lambda s: JobRepository(s).results_page(
                heavy_clerk, job, offset=deep_offset, limit=RESULTS_LIMIT
            ),
            f"offset {deep_offset}",
        ),
        # scraping: GET /jobs/{id}/results narrowed and sorted
        *_narrowed(heavy_clerk, job, record),
        # scraping: POST /lists/{id}/items with from_job (scraping's answer to campaign)
        Pattern(
            "job creators by 500 keys",
            lambda s: ResultsRepository(s).by_keys(job, record["heavy_job"]["platform"], keys),
            "from_job creator_keys",
        ),
        Pattern(
            "job creators narrowed, 500",
            lambda s: ResultsRepository(s).matching(
                job,
                ResultsFilter(verified=True, sort=ResultsSort.followers_desc),
                offset=0,
                limit=500,
            ),
            "from_job all, verified, followers_desc",
        ),
        # campaign: GET /lists/{id}/items
        Pattern(
            "list page",
            lambda s: ListRepository(s).items_page(heavy, heavy_list, page=2, page_size=PAGE_SIZE),
            f"list of {record['heavy_list']['items']} items",
        ),
        # campaign: GET /lists?tag= and ?any_tag= (walks of creator_list_tags)
        Pattern(
            "lists by tag",
            lambda s: ListRepository(s).page(
                heavy, page=1, page_size=PAGE_SIZE, archived=None, tags=[record["keyword"]]
            ),
            "heaviest user",
        ),
        Pattern(
            "lists by any tag",
            lambda s: ListRepository(s).page(
                heavy,
                page=1,
                page_size=PAGE_SIZE,
                archived=None,
                any_tags=[record["keyword"], "travel"],
            ),
            "heaviest user",
        ),
        # billing: GET /billing/usage/history (monthly aggregation)
        Pattern(
            "usage by month", lambda s: usage_history(s, heavy, 12), "heaviest user, 12 months"
        ),
        # campaign: GET /dashboard
        Pattern("dashboard", lambda s: DashboardRepository(s).overview(heavy), "heaviest user"),
    ]


def _narrowed(clerk: str, job: uuid.UUID, record: dict[str, Any]) -> list[Pattern]:
    """``GET /jobs/{id}/results`` with filters and sorts, at offset 0 and at a deep page."""
    # The deepest page a narrowed or sorted listing serves (or the job's middle, if smaller).
    deep = max(0, min(record["heavy_job"]["creators"] // 2, MAX_NARROWED_OFFSET - RESULTS_LIMIT))
    cases = [
        ("sorted followers_desc", ResultsFilter(sort=ResultsSort.followers_desc), 0),
        ("sorted followers_asc deep", ResultsFilter(sort=ResultsSort.followers_asc), deep),
        ("narrowed followers range", ResultsFilter(min_followers=100_000,
                                                   max_followers=200_000), 0),
        ("narrowed verified + email, sorted", ResultsFilter(
            verified=True, has_email=True, sort=ResultsSort.followers_desc), 0),
        ("narrowed q", ResultsFilter(q=record["keyword"]), 0),
        ("narrowed q, rare", ResultsFilter(q="creator1234"), 0),
        ("narrowed q + verified + email", ResultsFilter(q="mail", verified=True, has_email=True), 0),
    ]  # fmt: skip

    def call(query: ResultsFilter, offset: int) -> Call:
        return lambda s: ResultsRepository(s).narrowed_page(
            clerk, job, query, offset=offset, limit=RESULTS_LIMIT
        )

    return [
        Pattern(f"results {name}", call(query, offset), f"offset {offset}")
        for name, query, offset in cases
    ]


class Recorder:
    """Collects (sql, parameters) at the driver (``shared.sqltrace``) while ``active``."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.active = False

    def __call__(self, cursor, statement, parameters) -> None:
        if self.active:
            self.calls.append((statement, parameters))


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


_SEQ = re.compile(r"Seq Scan on (\w+)")


async def _big_tables(conn: psycopg.AsyncConnection) -> set[str]:
    cur = await conn.execute(
        "SELECT relname FROM pg_class WHERE relkind = 'r' AND reltuples >= %s"
        " AND relnamespace = current_schema()::regnamespace",
        (BIG_TABLE_ROWS,),
    )
    return {r[0] for r in await cur.fetchall()}


async def _seq_scans(
    conn: psycopg.AsyncConnection, calls: list[tuple[str, Any]], big: set[str]
) -> list[str]:
    found = []
    for sql, params in calls:
        cur = await conn.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(r[0] for r in await cur.fetchall())
        found += [t for t in _SEQ.findall(plan) if t in big]
    return sorted(set(found))


async def measure(
    database_url: str,
    record: dict[str, Any],
    *,
    iterations: int = 300,
    warmup: int = 30,
    only: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[Measurement]:
    """Time every pattern (or those whose name contains ``only``) against its baseline."""
    engine = make_engine(database_url, pool_size=1, application_name="scout-perf")
    factory = read_session_factory(engine)
    # The transactional figure runs on an engine of its own: one connection switching between
    # autocommit and a transaction on every call costs ~0.5 ms more per call (measured), which
    # would be charged to the data layer rather than to either query.
    txn_engine = make_engine(database_url, pool_size=1, application_name="scout-perf-txn")
    txn_factory = session_factory(txn_engine)
    recorder = Recorder()
    # The baseline runs with the session settings Scout's connections have.
    raw = await psycopg.AsyncConnection.connect(
        libpq_url(database_url), autocommit=True, options=SESSION_OPTIONS
    )
    out: list[Measurement] = []
    try:
        with sqltrace.recording(engine, recorder):
            big = await _big_tables(raw)
            for pattern in patterns_for(record):
                if only and only not in pattern.name:
                    continue
                if progress:
                    progress(pattern.name)

                async def data_layer(call: Call = pattern.call) -> None:
                    # What ReadSessionDep does around a GET (shared.web.deps).
                    session = factory()
                    try:
                        await call(session)
                    finally:
                        await release(session)

                async def in_transaction(call: Call = pattern.call) -> None:
                    async with txn_factory() as session:
                        await call(session)

                recorder.calls.clear()
                recorder.active = True
                await data_layer()
                recorder.active = False
                calls = list(recorder.calls)

                async def baseline(calls: list[tuple[str, Any]] = calls) -> None:
                    for sql, params in calls:
                        prepare = False if sql in PLANNED_EACH_CALL else None
                        cur = await raw.execute(sql, params, prepare=prepare)
                        if cur.description is not None:
                            await cur.fetchall()

                for _ in range(warmup):
                    await data_layer()
                    await baseline()
                ours, theirs, txn = [], [], []
                for _ in range(iterations):
                    started = time.perf_counter()
                    await data_layer()
                    middle = time.perf_counter()
                    await baseline()
                    ended = time.perf_counter()
                    await in_transaction()
                    ours.append((middle - started) * 1000)
                    theirs.append((ended - middle) * 1000)
                    txn.append((time.perf_counter() - ended) * 1000)
                scans = await _seq_scans(raw, calls, big)
                p50, base50 = statistics.median(ours), statistics.median(theirs)
                out.append(
                    Measurement(
                        pattern=pattern.name,
                        p50_ms=round(p50, 3),
                        p99_ms=round(_percentile(ours, 0.99), 3),
                        baseline_p50_ms=round(base50, 3),
                        baseline_p99_ms=round(_percentile(theirs, 0.99), 3),
                        ratio=round(p50 / base50, 2),
                        txn_p50_ms=round(statistics.median(txn), 3),
                        statements=len(calls),
                        plan_ok=not scans,
                        seq_scans=scans,
                        note=pattern.note,
                    )
                )
    finally:
        await raw.close()
        await engine.dispose()
        await txn_engine.dispose()
    return out


def run(database_url: str, record: dict[str, Any], **kwargs: Any) -> list[Measurement]:
    return asyncio.run(measure(database_url, record, **kwargs))
