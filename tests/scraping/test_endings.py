"""Every way a job ends settles its quota: cancel, timeout sweeper, provider failure, purges."""

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.scraping import worker as scraping_worker
from services.scraping.service import JobService
from shared.events.envelope import Envelope, prefixed
from shared.models import ScrapingJob
from shared.worker import WorkerContext, WorkerSpec

from ..support.fake_provider import Fault, fake_scrapecreators
from ..support.services import running_worker
from ..support.wait import eventually
from .conftest import (
    creators_used,
    job_body,
    load_job,
    stack,
    stored_keys,
    wait_for_status,
    wait_settled,
)


async def test_cancel_ends_a_live_job_releases_its_quota_and_leaves_no_work(
    committed, service_settings, account
):
    acct = await account()
    async with stack(service_settings, scraping_workers=0) as api:
        created = (await api.post("/jobs", json=job_body(acct), headers=acct.headers)).json()
        assert await creators_used(committed, acct.user.id) == 100  # held
        cancelled = await api.post(f"/jobs/{created['id']}/cancel", headers=acct.headers)
        assert cancelled.status_code == 200
        assert cancelled.json()["status"] == "cancelled"
        again = await api.post(f"/jobs/{created['id']}/cancel", headers=acct.headers)
        assert again.status_code == 200  # idempotent
        job = await load_job(committed, created["id"])
        # The scraping worker's relay publishes the terminal event; billing settles from it.
        async with running_worker("scraping", service_settings):
            await wait_settled(committed, acct.user.id, job.reservation_id, 0)
            await _queue_drained(committed)
        assert await stored_keys(committed, job.id) == []  # queued work found the job ended
        assert (await load_job(committed, job.id)).status == "cancelled"


async def test_a_finished_job_cannot_be_cancelled(committed, service_settings, account):
    acct = await account()
    async with stack(service_settings) as api:
        created = await api.post(
            "/jobs", json=job_body(acct, keywords=["none:0"]), headers=acct.headers
        )
        await wait_for_status(committed, created.json()["id"], "completed")
        refused = await api.post(f"/jobs/{created.json()['id']}/cancel", headers=acct.headers)
        assert refused.status_code == 409
        assert refused.json()["code"] == "job_already_ended"


async def test_the_sweeper_times_out_overdue_jobs_and_their_quota_comes_back(
    committed, service_settings, account
):
    acct = await account()
    async with stack(service_settings, scraping_workers=0) as api:
        late = (await api.post("/jobs", json=job_body(acct), headers=acct.headers)).json()
        fresh = (await api.post("/jobs", json=job_body(acct), headers=acct.headers)).json()
        async with committed.begin() as conn:
            await conn.execute(
                sa.update(ScrapingJob)
                .where(ScrapingJob.id == uuid.UUID(late["id"]))
                .values(status="processing", timeout_at=datetime.now(UTC) - timedelta(seconds=1))
            )
        # What the scheduled "scraping.sweep_timeouts" job runs, in its own transaction.
        async with AsyncSession(committed, expire_on_commit=False) as session, session.begin():
            assert await JobService(session).sweep_timeouts() == 1
        job = await load_job(committed, late["id"])
        assert (job.status, job.error) == ("timeout", "timed out before finishing")
        assert (await load_job(committed, fresh["id"])).status == "pending"
        async with running_worker("scraping", service_settings):
            await wait_settled(committed, acct.user.id, job.reservation_id, 100)  # fresh's hold


async def test_a_provider_refusal_mid_job_ends_it_in_error_and_charges_only_what_was_stored(
    committed, service_settings, account
):
    acct = await account()
    async with fake_scrapecreators(per_page=10) as (fake, url):
        settings = service_settings.model_copy(
            update={
                "scraping_provider": "scrapecreators",
                "scraping_provider_base_url": url,
                "scraping_provider_api_key": "test-key",
            }
        )
        # Page 1 answers, then the provider refuses for good (a 4xx: retrying cannot help).
        fake.script(Fault())
        fake.always = Fault(status=403)
        async with stack(settings) as api:
            created = await api.post(
                "/jobs", json=job_body(acct, keywords=["beauty:100"]), headers=acct.headers
            )
            job = await wait_for_status(committed, created.json()["id"], "error")
            assert "HTTP 403" in job.error
            stored = len(await stored_keys(committed, job.id))
            assert stored == job.processed_results == 8  # 10 videos, 2 repeated authors
            await wait_settled(committed, acct.user.id, job.reservation_id, stored)
            body = (await api.get(f"/jobs/{job.id}/results", headers=acct.headers)).json()
            assert body["items"][0]["source"] == "scrapecreators"
            assert body["items"][0]["keyword"] == "beauty:100"


async def test_a_provider_down_for_a_while_delays_the_job_and_loses_nothing(
    committed, service_settings, account
):
    """5xx for longer than the adapter's own retries, several times over: each time the work
    item goes back to the queue (not counted, not dead-lettered) and the job completes with
    exactly the creators of an undisturbed run."""
    acct = await account()
    term = "beauty:60"
    async with fake_scrapecreators(per_page=10) as (fake, url):
        settings = service_settings.model_copy(
            update={
                "scraping_provider": "scrapecreators",
                "scraping_provider_base_url": url,
                "scraping_provider_api_key": "test-key",
                "events_retry_max_seconds": 0.2,
            }
        )
        # Page 1 answers; then 12 failures in a row: four times the adapter's 3 attempts.
        fake.script(Fault(), *[Fault(status=503)] * 12)
        async with stack(settings) as api:
            created = await api.post(
                "/jobs", json=job_body(acct, keywords=[term]), headers=acct.headers
            )
            job = await wait_for_status(committed, created.json()["id"], "completed", within=30)
            await wait_settled(committed, acct.user.id, job.reservation_id, job.processed_results)
    expected = {f"tt_beauty_{fake.author(term, j)}" for j in range(fake.supply(term))}
    assert set(await stored_keys(committed, job.id)) == expected
    assert job.processed_results == len(expected)
    assert len(fake.requests) == 1 + 12 + 5  # every page asked until it answered
    assert await dead_letters(committed) == 0


async def test_a_job_against_the_real_adapter_completes(committed, service_settings, account):
    acct = await account()
    async with fake_scrapecreators(per_page=10) as (_fake, url):
        settings = service_settings.model_copy(
            update={
                "scraping_provider": "scrapecreators",
                "scraping_provider_base_url": url,
                "scraping_provider_api_key": "test-key",
            }
        )
        async with stack(settings) as api:
            created = await api.post(
                "/jobs",
                json=job_body(acct, platform="youtube", keywords=["diy:35"]),
                headers=acct.headers,
            )
            job = await wait_for_status(committed, created.json()["id"], "completed")
    assert job.processed_results == 28  # 35 videos, every fifth by an earlier channel
    assert job.processed_runs == 4


async def dead_letters(engine) -> int:
    async with engine.connect() as conn:
        return await conn.scalar(sa.text("SELECT count(*) FROM dead_letters"))


async def _queue_drained(engine) -> None:
    async def drained() -> bool:
        async with engine.connect() as conn:
            n = await conn.scalar(
                sa.text("SELECT count(*) FROM inbox WHERE subject = 'scraping.work.search.v1'")
            )
        return n >= 1

    await eventually(drained)


async def _publish(nc, prefix: str, type: str, data: dict, source: str) -> None:
    envelope = Envelope(
        id=uuid.uuid4(), type=type, version=1, source=source,
        occurred_at=datetime.now(UTC), aggregate={"type": "x", "id": str(uuid.uuid4())},
        data={k: str(v) for k, v in data.items()},
    )  # fmt: skip
    await nc.jetstream().publish(
        prefixed(envelope.subject, prefix), envelope.to_json(),
        headers={"Nats-Msg-Id": str(envelope.id)},
    )  # fmt: skip


async def test_campaign_and_user_deletion_purge_jobs_and_results(
    committed, service_settings, nats_prefix, nc, account
):
    acct, other = await account(), await account()
    async with stack(service_settings) as api:
        done = (
            await api.post("/jobs", json=job_body(acct, keywords=["a:30"]), headers=acct.headers)
        ).json()
        await wait_for_status(committed, done["id"], "completed")
        theirs = (
            await api.post("/jobs", json=job_body(other, keywords=["b:30"]), headers=other.headers)
        ).json()
        await wait_for_status(committed, theirs["id"], "completed")
        await _publish(
            nc, nats_prefix, "campaign.campaign.deleted",
            {"campaign_id": acct.campaign.id, "user_id": acct.user.id}, "campaign",
        )  # fmt: skip
        await _publish(
            nc, nats_prefix, "identity.user.deleted",
            {"user_id": other.user.id, "clerk_user_id": other.user.user_id}, "identity",
        )  # fmt: skip

        async def purged() -> bool:
            async with committed.connect() as conn:
                jobs = await conn.scalar(sa.text("SELECT count(*) FROM scraping_jobs"))
                batches = await conn.scalar(sa.text("SELECT count(*) FROM scraping_results"))
                keys = await conn.scalar(sa.text("SELECT count(*) FROM scraping_job_creators"))
            return jobs == batches == keys == 0

        await eventually(purged)


def _without_search(ctx: WorkerContext) -> WorkerSpec:
    spec = scraping_worker.build(ctx)
    return replace(spec, consumers=[c for c in spec.consumers if c.name != "search"])


async def test_deleting_a_campaign_cancels_its_live_job_and_gives_the_quota_back(
    committed, service_settings, nats_prefix, nc, account
):
    acct = await account()
    async with stack(service_settings, scraping_workers=0) as api:
        created = (await api.post("/jobs", json=job_body(acct), headers=acct.headers)).json()
        assert await creators_used(committed, acct.user.id) == 100
        await _publish(
            nc, nats_prefix, "campaign.campaign.deleted",
            {"campaign_id": acct.campaign.id, "user_id": acct.user.id}, "campaign",
        )  # fmt: skip
        # Without its search consumer the job stays live (no page is stored before the
        # deletion lands, which would rightly stay counted), so the whole hold must come back.
        async with running_worker("scraping", service_settings, build=_without_search):

            async def settled() -> bool:
                gone = await load_job(committed, created["id"]) is None
                return gone and await creators_used(committed, acct.user.id) == 0

            await eventually(settled)


async def test_a_similar_search_runs_from_the_seed_username(committed, service_settings, account):
    acct = await account()
    async with stack(service_settings) as api:
        created = await api.post(
            "/jobs",
            json=job_body(acct, search_type="similar", keywords=None,
                          target_username="@SomeCreator", target_results=20),
            headers=acct.headers,
        )  # fmt: skip
        assert created.status_code == 202, created.text
        assert created.json()["target_username"] == "SomeCreator"
        job = await wait_for_status(committed, created.json()["id"], "completed")
        assert job.processed_results == 20
        page = (await api.get(f"/jobs/{job.id}/results", headers=acct.headers)).json()
        assert {c["keyword"] for c in page["items"]} == {"@SomeCreator"}
