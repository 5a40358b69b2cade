"""Outages against real processes: nothing is dead-lettered, lost or applied twice.

Scraping jobs (the ScrapeCreators adapter against its deterministic local fake, a little slow
per page so the jobs are mid-flight) and a steady stream of ``campaign.campaign.deleted``
events (campaign's relay → billing's consumer) run while Postgres (through a TCP proxy) or
NATS (a private server) is away for the workers and the API. Afterwards every job has exactly
the creators of an undisturbed run, the event stream was applied exactly once, billing's usage
equals the stored rows, no reservation is left held, and the dead-letter store is empty.

Default: the database away 90 s, NATS away 60 s, and the database flapping (25 cuts of
0.5 to 3 s, 0.2 to 2 s apart). ``SCOUT_SOAK=1``: the database away 10 minutes.
Each test prints what it measured (run with ``-s`` to see it).
"""

import asyncio
import os
import random
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from shared.events.envelope import stream_name
from shared.events.outbox import record_event
from shared.events.streams import connect
from shared.models import Campaign, UserSubscription, UserUsage
from shared.settings import Settings

from ..factories import make_user
from ..support.fake_provider import FakeScrapeCreators, Fault, fake_scrapecreators
from ..support.procs import NatsServer, Proc, scout_api, scout_worker, service_env, started
from ..support.proxy import TcpProxy
from ..support.wait import eventually

SOAK = os.environ.get("SCOUT_SOAK") == "1"
DB_OUTAGE_S = 600 if SOAK else 90
NATS_OUTAGE_S = 60
FLAPS = 25
TERMS = ("travel:240", "fitness:200", "cooking:220")  # one chain per job: deterministic results
EVENTS_PER_SECOND = 10
CAMPAIGNS_AT_START = 100_000
# Events billing applied: one inbox row each.
APPLIED = "SELECT count(*) FROM inbox WHERE consumer = 'billing_campaign'"


@dataclass
class Scenario:
    """What a test started: the user, its jobs, the event producer and the processes."""

    engine: AsyncEngine
    fake: FakeScrapeCreators
    api: Proc
    workers: dict[str, Proc]
    user_id: uuid.UUID
    headers: dict[str, str]
    job_ids: list[str] = field(default_factory=list)
    produced: int = 0
    producing: bool = True

    async def produce(self) -> None:
        """campaign.campaign.deleted rows into campaign's outbox, written straight to Postgres
        (as the rest of the system keeps doing while these processes are cut off)."""
        while self.producing:
            async with AsyncSession(self.engine) as session, session.begin():
                for _ in range(EVENTS_PER_SECOND // 5):
                    cid = uuid.uuid4()
                    await record_event(
                        session, service="campaign", type="campaign.campaign.deleted",
                        aggregate_type="campaign", aggregate_id=cid,
                        data={"campaign_id": cid, "user_id": self.user_id}, user_id=self.user_id,
                    )  # fmt: skip
                    self.produced += 1
            await asyncio.sleep(0.2)  # the producer's pace, not a synchronisation


def with_fake_provider(settings: Settings, url: str, **update: str) -> Settings:
    """``settings`` with the ScrapeCreators adapter pointed at the local fake at ``url``, and
    ``update`` (where the processes find Postgres or NATS)."""
    return settings.model_copy(update={
        "scraping_provider": "scrapecreators", "scraping_provider_base_url": url,
        "scraping_provider_api_key": "test-key", **update,
    })  # fmt: skip


async def scalar(engine: AsyncEngine, sql: str, **params):
    async with engine.connect() as conn:
        return await conn.scalar(sa.text(sql), params)


async def start_scenario(engine: AsyncEngine, fake, env: dict[str, str], tmp_path, procs,
                         signing_keys) -> Scenario:  # fmt: skip
    async with AsyncSession(engine) as session, session.begin():
        user = await make_user(session)
        campaign = Campaign(user_id=user.id, name="outage")
        session.add(campaign)
        await session.flush()
        await session.execute(
            sa.update(UserSubscription).where(UserSubscription.user_id == user.id)
            .values(current_plan="pro", subscription_status="active")
        )  # fmt: skip
        await session.execute(
            sa.update(UserUsage).where(UserUsage.user_id == user.id)
            .values(usage_campaigns_current=CAMPAIGNS_AT_START)
        )  # fmt: skip
        user_id, clerk, campaign_id = user.id, user.user_id, str(campaign.id)
    workers = {s: scout_worker(s, env, tmp_path) for s in ("billing", "campaign", "scraping")}
    api = scout_api("scraping", env, tmp_path)
    procs.extend(p.start() for p in (api, *workers.values()))
    await started(api, *workers.values())
    headers = {"authorization": f"Bearer {signing_keys.token(clerk)}"}
    scenario = Scenario(engine, fake, api, workers, user_id, headers)
    async with httpx.AsyncClient(base_url=api.url, headers=headers, timeout=10) as client:
        for term in TERMS:
            r = await client.post("/jobs", json={
                "campaign_id": campaign_id, "platform": "tiktok", "keywords": [term],
                "target_results": 1000,
            })  # fmt: skip
            assert r.status_code == 202, r.text
            scenario.job_ids.append(r.json()["id"])
    return scenario


async def jobs_under_way(s: Scenario, at_least: int) -> bool:
    """Every job has stored some creators and none has finished."""
    rows = await _job_rows(s)
    return all(r.status == "processing" and r.processed_results >= at_least for r in rows)


async def _job_rows(s: Scenario) -> list:
    async with s.engine.connect() as conn:
        result = await conn.execute(
            sa.text(
                "SELECT id, status, processed_results, reservation_id FROM scraping_jobs"
                " WHERE id = ANY(:ids) ORDER BY created_at"
            ),
            {"ids": [uuid.UUID(j) for j in s.job_ids]},
        )
        return result.all()


async def timed(check: Callable[[], Awaitable[bool]], within: float) -> float:
    """Seconds until ``check()`` holds (fails the test after ``within``)."""
    start = time.monotonic()
    await eventually(check, within=within, interval=0.1)
    return time.monotonic() - start


def readyz(proc: Proc, status: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        try:
            async with httpx.AsyncClient(timeout=2.5) as client:
                return (await client.get(f"{proc.url}/readyz")).status_code == status  # type: ignore[attr-defined]
        except httpx.HTTPError:
            return False

    return check


async def assert_everything_delivered_once(s: Scenario, measured: dict) -> None:
    """Jobs complete with the undisturbed creators; the stream applied once; usage settled."""

    async def all_completed() -> bool:
        return all(r.status == "completed" for r in await _job_rows(s))

    try:
        measured["recovery_s"] = round(await timed(all_completed, within=180), 1)
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {await stream_state(s)}") from None
    for job_id, term in zip(s.job_ids, TERMS, strict=True):
        keys = await _stored_keys(s.engine, job_id)
        undisturbed = {f"tt_{term.split(':')[0]}_{s.fake.author(term, j)}"
                       for j in range(s.fake.supply(term))}  # fmt: skip
        assert len(keys) == len(set(keys)), f"{term}: a creator stored twice"
        assert set(keys) == undisturbed, f"{term}: {len(set(keys))} of {len(undisturbed)}"

    s.producing = False

    async def stream_applied() -> bool:
        return await scalar(s.engine, APPLIED) == s.produced

    try:
        await eventually(stream_applied, within=120, interval=0.2)
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {await stream_state(s)}") from None
    campaigns = await scalar(
        s.engine, "SELECT usage_campaigns_current FROM user_usage WHERE user_id = :u", u=s.user_id
    )
    assert campaigns == CAMPAIGNS_AT_START - s.produced  # each event exactly once

    stored = sum(r.processed_results for r in await _job_rows(s))

    async def settled() -> bool:
        used = await scalar(
            s.engine,
            "SELECT usage_creators_current_month FROM user_usage WHERE user_id = :u",
            u=s.user_id,
        )
        held = await scalar(
            s.engine,
            "SELECT count(*) FROM usage_reservations WHERE user_id = :u AND status = 'reserved'",
            u=s.user_id,
        )
        return used == stored and held == 0

    await eventually(settled, within=60, interval=0.2)
    assert await scalar(s.engine, "SELECT count(*) FROM dead_letters") == 0
    assert await scalar(s.engine, "SELECT count(*) FROM event_attempts") == 0
    measured["events_applied"] = s.produced
    measured["creators_stored"] = stored


async def stream_state(s: Scenario) -> dict:
    """Where the processes, jobs and the campaign → billing stream stand: what a stalled
    recovery is waiting on."""
    async with s.engine.connect() as conn:
        pending = (await conn.execute(sa.text(
            "SELECT count(*), max(publish_attempts), max(last_error) FROM events_pending"
            " WHERE service = 'campaign'"
        ))).one()  # fmt: skip
        busy = (await conn.execute(sa.text(
            "SELECT application_name, state, wait_event_type, wait_event,"
            " round(extract(epoch FROM now() - xact_start)) AS xact_s, left(query, 120)"
            " FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid() AND state <> 'idle'"
        ))).all()  # fmt: skip
        advisory = (await conn.execute(sa.text(
            "SELECT a.application_name, a.state FROM pg_locks l JOIN pg_stat_activity a"
            " USING (pid) WHERE l.locktype = 'advisory' AND l.granted"
        ))).all()  # fmt: skip
    return {
        "stopped": [p.name for p in (s.api, *s.workers.values()) if not p.running],
        "jobs": [(r.status, r.processed_results) for r in await _job_rows(s)],
        "produced": s.produced,
        "applied": await scalar(s.engine, APPLIED),
        "campaign_pending": tuple(pending),
        "busy_backends": [tuple(r) for r in busy],
        "advisory_holders": [tuple(r) for r in advisory],
    }


async def _stored_keys(engine: AsyncEngine, job_id: str) -> list[str]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            sa.text(
                "SELECT c->>'creator_key' FROM scraping_results r,"
                " jsonb_array_elements(r.creators) c WHERE r.job_id = :j"
            ),
            {"j": uuid.UUID(job_id)},
        )
        return [r[0] for r in rows]


async def deliveries(nats_url: str, prefix: str) -> dict[str, int]:
    """Deliveries per durable against messages in its stream (redeliveries = the difference)."""
    nc = await connect(nats_url, name="outage-measure")
    js = nc.jetstream()
    try:
        work = await js.consumer_info(stream_name("SCRAPING_WORK", prefix), "scraping_search")
        events = await js.consumer_info(stream_name("CAMPAIGN", prefix), "billing_campaign")
        return {
            "work_items": (
                await js.stream_info(stream_name("SCRAPING_WORK", prefix))
            ).state.last_seq,
            "work_deliveries": work.delivered.consumer_seq,
            "events": (await js.stream_info(stream_name("CAMPAIGN", prefix))).state.last_seq,
            "event_deliveries": events.delivered.consumer_seq,
        }
    finally:
        await nc.close()


def log_counts(procs: dict[str, Proc]) -> dict[str, int]:
    text = "\n".join(p.output() for p in procs.values())
    return {
        name: len(re.findall(pattern, text))
        for name, pattern in {
            "retries_logged": r"events\.consumer\.retry",
            "attempts_counted": r"events\.consumer\.attempt_failed",
            "gate_closed": r"db\.unavailable",
            "dead_lettered": r"events\.consumer\.dead_lettered",
        }.items()
    }


@asynccontextmanager
async def behind_a_database_proxy(
    committed, service_settings, signing_keys, procs, tmp_path
) -> AsyncIterator[tuple[TcpProxy, Scenario]]:
    """The scenario with every process reaching Postgres through a proxy the test can stop,
    its events produced for the duration."""
    proxy = TcpProxy(service_settings.database_url, default_port=5432)
    await proxy.start()
    try:
        async with fake_scrapecreators(per_page=10) as (fake, url):
            fake.always = Fault(delay=0.25)  # pages take a while: the jobs are mid-flight
            settings = with_fake_provider(
                service_settings, url, database_url=proxy.url_for(service_settings.database_url)
            )
            s = await start_scenario(
                committed, fake, service_env(settings), tmp_path, procs, signing_keys
            )
            producer = asyncio.create_task(s.produce())
            try:
                yield proxy, s
            finally:
                s.producing = False
                await producer
    finally:
        await proxy.stop()


async def test_the_database_away_for_workers_and_apis_loses_nothing(
    committed, service_settings, signing_keys, procs, tmp_path
):
    began = time.monotonic()
    measured: dict = {"outage_s": DB_OUTAGE_S}
    async with behind_a_database_proxy(
        committed, service_settings, signing_keys, procs, tmp_path
    ) as (proxy, s):
        await eventually(lambda: jobs_under_way(s, 20), within=60, interval=0.1)
        await proxy.stop()  # Postgres is gone for every process but the test itself
        cut = time.monotonic()
        measured["readyz_503_after_s"] = round(
            await timed(readyz(s.workers["scraping"], 503), within=5), 2
        )
        async with httpx.AsyncClient(base_url=s.api.url, headers=s.headers) as client:
            during = await client.get(f"/jobs/{s.job_ids[0]}")
            assert during.status_code == 503 and during.json()["code"] == "dependency_unavailable"
        await asyncio.sleep(max(0.0, DB_OUTAGE_S - (time.monotonic() - cut)))  # the outage
        await proxy.start()
        measured["readyz_200_after_s"] = round(
            await timed(readyz(s.workers["scraping"], 200), within=15), 2
        )
        # The API's gate has a probe of its own (up to shared.events.health.PROBE_MAX_SECONDS
        # apart), so it can reopen a moment after the worker's: a balancer sends traffic to the
        # API once its /readyz says so.
        measured["api_readyz_200_after_s"] = round(await timed(readyz(s.api, 200), within=10), 2)
        async with httpx.AsyncClient(base_url=s.api.url, headers=s.headers) as client:
            after = await client.get(f"/jobs/{s.job_ids[0]}")
            assert after.status_code == 200, after.text  # same process, no restart
        await assert_everything_delivered_once(s, measured)
    measured |= await deliveries(service_settings.nats_url, service_settings.scout_nats_prefix)
    report_and_check("database outage", measured, s, s.fake, began, procs)


async def test_a_flapping_database_loses_nothing_and_stops_no_process(
    committed, service_settings, signing_keys, procs, tmp_path
):
    """Postgres goes away and comes back every second or two, FLAPS times, while jobs run
    and the event stream flows. A return is often followed at once by another failure (a
    connection from before the cut, the next cut): every part waits each one out, no process
    stops, and afterwards the books are exact as after one long outage."""
    began = time.monotonic()
    cuts = random.Random(FLAPS)  # the same pattern on every run
    measured: dict = {"flaps": FLAPS}
    async with behind_a_database_proxy(
        committed, service_settings, signing_keys, procs, tmp_path
    ) as (proxy, s):
        for _ in range(FLAPS):
            await asyncio.sleep(cuts.uniform(0.2, 2.0))  # up
            await proxy.stop()
            await asyncio.sleep(cuts.uniform(0.5, 3.0))  # down
            await proxy.start()
        await assert_everything_delivered_once(s, measured)
    measured |= log_counts(s.workers)
    measured["total_s"] = round(time.monotonic() - began, 1)
    print(f"\nflapping database: {measured}")
    assert measured["dead_lettered"] == 0 and measured["attempts_counted"] == 0
    assert measured["gate_closed"] >= FLAPS // 2  # the cuts were seen (each worker by its own)
    assert all(p.running for p in procs), [p.name for p in procs if not p.running]


async def test_nats_away_for_workers_and_apis_loses_nothing(
    committed, service_settings, signing_keys, procs, tmp_path
):
    began = time.monotonic()
    nats = NatsServer(tmp_path / "js", tmp_path)
    await nats.start()
    measured: dict = {"outage_s": NATS_OUTAGE_S}
    async with fake_scrapecreators(per_page=10) as (fake, url):
        fake.always = Fault(delay=0.25)
        settings = with_fake_provider(service_settings, url, nats_url=nats.url)
        s = await start_scenario(
            committed, fake, service_env(settings), tmp_path, procs, signing_keys
        )
        producer = asyncio.create_task(s.produce())
        try:
            await eventually(lambda: jobs_under_way(s, 20), within=60, interval=0.1)
            nats.stop()  # the server is gone (its store stays on disk)
            cut = time.monotonic()
            measured["readyz_503_after_s"] = round(
                await timed(readyz(s.workers["scraping"], 503), within=5), 2
            )
            await asyncio.sleep(max(0.0, NATS_OUTAGE_S - (time.monotonic() - cut)))  # the outage
            await nats.start()
            measured["readyz_200_after_s"] = round(
                await timed(readyz(s.workers["scraping"], 200), within=15), 2
            )
            await assert_everything_delivered_once(s, measured)
        finally:
            s.producing = False
            await producer
        measured |= await deliveries(nats.url, service_settings.scout_nats_prefix)
    report_and_check("NATS outage", measured, s, fake, began, procs)
    nats.stop()


def report_and_check(what: str, measured: dict, s, fake, began: float, procs) -> None:
    """Print an outage's figures; /readyz told the truth, nothing was dead-lettered or counted
    as an attempt, and every process waited the outage out instead of crashing."""
    measured |= log_counts(s.workers)
    measured["provider_requests"] = len(fake.requests)
    measured["total_s"] = round(time.monotonic() - began, 1)
    print(f"\n{what}: {measured}")
    assert measured["readyz_503_after_s"] <= 2 and measured["readyz_200_after_s"] <= 10
    assert measured["dead_lettered"] == 0 and measured["attempts_counted"] == 0
    assert all(p.running for p in procs)
