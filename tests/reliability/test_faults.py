"""Faults on purpose, against real processes: kill -9 mid-stream, NATS away, Postgres away.

SCOUT_SOAK=1 runs the longer variants (more events, longer outages).
"""

import asyncio
import os
import uuid

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from shared.events.envelope import stream_name
from shared.events.outbox import record_event
from shared.events.relay import Relay
from shared.events.streams import connect, ensure_streams
from shared.models import Campaign, DeadLetter, InboxEntry, ScrapingJob, UserSubscription, UserUsage

from ..factories import make_user
from ..support.fake_provider import Fault, fake_scrapecreators
from ..support.procs import NatsServer, scout_api, scout_worker, service_env, started, wait_http
from ..support.proxy import TcpProxy
from ..support.wait import eventually

SOAK = os.environ.get("SCOUT_SOAK") == "1"
EVENTS = 50_000 if SOAK else 10_000
OUTAGE_SECONDS = 120 if SOAK else 30


async def _count(engine, stmt) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(stmt) or 0)


async def test_killing_the_consumer_mid_stream_loses_nothing_and_applies_nothing_twice(
    committed, service_settings, nats_url, nats_prefix, procs, tmp_path
):
    """10k campaign.deleted events each decrement a counter once; the billing worker that
    applies them is SIGKILLed twice mid-stream. Lost → counter too high; twice → too low."""
    async with AsyncSession(committed) as session, session.begin():
        user = await make_user(session)
        user_id = user.id
        await session.execute(
            sa.update(UserUsage)
            .where(UserUsage.user_id == user_id)
            .values(usage_campaigns_current=EVENTS + 500)
        )
    env = service_env(service_settings)
    worker = scout_worker("billing", env, tmp_path)
    procs.append(worker.start())

    nc = await connect(nats_url, name="fault-producer")
    js = nc.jetstream()
    await ensure_streams(js, nats_prefix)
    relay = Relay(committed, js, "campaign", prefix=nats_prefix)
    relay_task = asyncio.create_task(relay.run())

    async def produce() -> None:
        for start in range(0, EVENTS, 1000):
            async with AsyncSession(committed) as session, session.begin():
                for _ in range(start, min(start + 1000, EVENTS)):
                    cid = uuid.uuid4()
                    await record_event(
                        session, service="campaign", type="campaign.campaign.deleted",
                        aggregate_type="campaign", aggregate_id=cid,
                        data={"campaign_id": cid, "user_id": user_id}, user_id=user_id,
                    )  # fmt: skip

    applied = (
        sa.select(sa.func.count())
        .select_from(InboxEntry)
        .where(InboxEntry.consumer == "billing_campaign")
    )
    producer = asyncio.create_task(produce())
    try:
        for fraction in (0.2, 0.55):  # kill -9 twice while messages are being applied
            await eventually(
                lambda f=fraction: _ge(committed, applied, int(EVENTS * f)), within=120
            )
            worker.kill()  # returns once the process is gone
            procs.append(worker.start())
        await producer
        await eventually(lambda: _ge(committed, applied, EVENTS), within=180)
        # Nothing left for billing's durable (every message acked, none due again): no stray
        # second application can still arrive.
        await eventually(lambda: _durable_drained(js, nats_prefix), within=60)
    finally:
        relay.stop()
        await relay_task
        await nc.close()
    usage = await _count(
        committed,
        sa.select(UserUsage.usage_campaigns_current).where(UserUsage.user_id == user_id),
    )
    assert usage == 500, f"expected 500 left, got {usage} (lost if higher, doubled if lower)"
    assert await _count(committed, applied) == EVENTS
    assert await _count(committed, sa.select(sa.func.count()).select_from(DeadLetter)) == 0


async def _durable_drained(js, prefix: str) -> bool:
    info = await js.consumer_info(stream_name("CAMPAIGN", prefix), "billing_campaign")
    return info.num_pending == 0 and info.num_ack_pending == 0 and info.num_redelivered == 0


async def _ge(engine, stmt, n: int) -> bool:
    return await _count(engine, stmt) >= n


async def test_nats_outage_while_apis_take_writes_delivers_everything_after(
    committed, service_settings, signing_keys, procs, tmp_path
):
    """A private NATS server is stopped for the outage; campaign's API keeps taking deletes
    (they only need Postgres), and every campaign.deleted reaches billing once NATS is back."""
    nats = NatsServer(tmp_path / "js", tmp_path)
    await nats.start()
    settings = service_settings.model_copy(update={"nats_url": nats.url})
    env = service_env(settings)
    async with AsyncSession(committed) as session, session.begin():
        user = await make_user(session, user_id=f"user_outage_{uuid.uuid4().hex[:6]}")
        user_id, clerk = user.id, user.user_id
        campaigns = [Campaign(user_id=user_id, name=f"c{i}") for i in range(40)]
        session.add_all(campaigns)
        await session.flush()
        campaign_ids = [str(c.id) for c in campaigns]
        await session.execute(
            sa.update(UserUsage)
            .where(UserUsage.user_id == user_id)
            .values(usage_campaigns_current=40)
        )
        await session.execute(
            sa.update(UserSubscription).where(UserSubscription.user_id == user_id)
            .values(current_plan="pro", subscription_status="active")
        )  # fmt: skip
    api = scout_api("campaign", env, tmp_path)
    workers = [scout_worker("campaign", env, tmp_path), scout_worker("billing", env, tmp_path)]
    procs.extend(p.start() for p in (api, *workers))
    await started(*workers)
    await wait_http(f"{api.url}/readyz")
    headers = {"authorization": f"Bearer {signing_keys.token(clerk)}"}
    async with httpx.AsyncClient(base_url=api.url, headers=headers, timeout=10) as client:
        assert (await client.delete(f"/campaigns/{campaign_ids[0]}")).status_code == 204
        usage = sa.select(UserUsage.usage_campaigns_current).where(UserUsage.user_id == user_id)
        await eventually(lambda: _eq(committed, usage, 39), within=30)

        nats.stop()
        await wait_http(f"{api.url}/readyz", status=503, within=15)
        for cid in campaign_ids[1:]:  # writes keep succeeding with NATS down
            r = await client.delete(f"/campaigns/{cid}")
            assert r.status_code == 204, r.text
        await asyncio.sleep(OUTAGE_SECONDS)
        unpublished = (
            sa.select(sa.func.count())
            .select_from(sa.text("events_pending"))
            .where(sa.text("service = 'campaign'"))
        )
        assert await _count(committed, unpublished) >= 39  # held in the outbox, not lost

        await nats.start()  # same store directory: the streams come back with it
        await wait_http(f"{api.url}/readyz", within=30)
        await eventually(lambda: _eq(committed, usage, 0), within=60)
        await eventually(lambda: _eq(committed, unpublished, 0), within=30)
    nats.stop()


async def _eq(engine, stmt, n: int) -> bool:
    return await _count(engine, stmt) == n


async def test_postgres_outage_is_reported_and_survived_without_restart(
    committed, service_settings, signing_keys, procs, tmp_path
):
    """The API reaches Postgres through a proxy that drops every connection (what a restart
    looks like to a client): /readyz says 503 meanwhile, and the same process serves again after."""
    proxy = TcpProxy(service_settings.database_url, default_port=5432)
    await proxy.start()
    settings = service_settings.model_copy(
        update={"database_url": proxy.url_for(service_settings.database_url)}
    )
    async with AsyncSession(committed) as session, session.begin():
        clerk = (await make_user(session, user_id=f"user_pg_{uuid.uuid4().hex[:6]}")).user_id
    api = scout_api("campaign", service_env(settings), tmp_path)
    procs.append(api.start())
    await wait_http(f"{api.url}/readyz")
    headers = {"authorization": f"Bearer {signing_keys.token(clerk)}"}
    async with httpx.AsyncClient(base_url=api.url, headers=headers, timeout=10) as client:
        assert (await client.get("/lists")).status_code == 200
        await proxy.stop()
        # /readyz reports the heartbeat, which sees the outage within a second.
        await wait_http(f"{api.url}/readyz", status=503, within=2)
        ready = await client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["postgres"] is False
        during = await client.get("/lists")
        assert during.status_code == 503, during.text  # fail closed with a code, never a 500
        assert during.json()["code"] == "dependency_unavailable"
        await proxy.start()
        await wait_http(f"{api.url}/readyz", within=30)
        assert (await client.get("/lists")).status_code == 200
    assert api.running  # recovered without a restart
    await proxy.stop()


async def test_a_scraping_worker_killed_mid_job_still_completes_without_duplicates(
    committed, service_settings, signing_keys, procs, tmp_path
):
    """Two scraping worker processes share a job whose provider pages are slow; one is
    SIGKILLed mid-page. Its unacknowledged item goes to the other worker after ack_wait, and the
    job completes with every creator exactly once."""
    term = "travel:240"  # the fake provider holds 240 videos for it, 10 per page
    async with fake_scrapecreators(per_page=10) as (fake, url):
        fake.always = Fault(delay=0.25)  # every page takes a while: kills land mid-page
        settings = service_settings.model_copy(
            update={
                "scraping_provider": "scrapecreators",
                "scraping_provider_base_url": url,
                "scraping_provider_api_key": "test-key",
                "scraping_work_ack_wait_seconds": 3,
            }
        )
        env = service_env(settings)
        async with AsyncSession(committed) as session, session.begin():
            user = await make_user(session, user_id=f"user_kill_{uuid.uuid4().hex[:6]}")
            campaign = Campaign(user_id=user.id, name="kill test")
            session.add(campaign)
            await session.flush()
            clerk, campaign_id = user.user_id, str(campaign.id)
            await session.execute(
                sa.update(UserSubscription).where(UserSubscription.user_id == user.id)
                .values(current_plan="pro", subscription_status="active")
            )  # fmt: skip
        first = scout_worker("scraping", env, tmp_path, tag="-a")
        workers = [
            scout_worker("billing", env, tmp_path),
            first,
            scout_worker("scraping", env, tmp_path, tag="-b"),
        ]
        api = scout_api("scraping", env, tmp_path)
        procs.extend(p.start() for p in (api, *workers))
        await started(*workers)
        await wait_http(f"{api.url}/readyz")
        headers = {"authorization": f"Bearer {signing_keys.token(clerk)}"}
        async with httpx.AsyncClient(base_url=api.url, headers=headers, timeout=10) as client:
            r = await client.post(
                "/jobs",
                json={"campaign_id": campaign_id, "platform": "tiktok", "keywords": [term], "target_results": 1000},
            )  # fmt: skip
            assert r.status_code == 202, r.text
            job_id = r.json()["id"]
            progressed = sa.select(ScrapingJob.processed_results).where(ScrapingJob.id == job_id)
            await eventually(lambda: _ge(committed, progressed, 40), within=60)
            first.kill()  # mid-job, most likely mid-page
            await eventually(lambda: _ge(committed, progressed, 100), within=60)
            procs.append(first.start())
            status = sa.select(ScrapingJob.status).where(ScrapingJob.id == job_id)

            async def ended() -> bool:
                async with committed.connect() as conn:
                    return await conn.scalar(status) in ("completed", "error")

            await eventually(ended, within=120, interval=0.2)
            job = (await client.get(f"/jobs/{job_id}")).json()
            items, offset = [], 0
            while offset is not None:
                page = (
                    await client.get(f"/jobs/{job_id}/results", params={"offset": offset})
                ).json()
                items += page["items"]
                offset = page["next_offset"]
    expected = len({fake.author(term, j) for j in range(fake.supply(term))})
    assert job["status"] == "completed", job
    keys = [(c["platform"], c["creator_key"]) for c in items]
    assert len(keys) == len(set(keys)) == job["processed_results"], (len(keys), len(set(keys)), job)
    assert len(keys) == expected
