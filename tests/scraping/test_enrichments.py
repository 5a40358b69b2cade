"""Creator enrichment over HTTP: profiles, the stored-profile cache, a job's creators, and the
plan's enrichments reserved up front and settled with what was really fetched."""

import asyncio
import uuid
from datetime import UTC, datetime
from functools import partial

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from services.billing.service import usage
from services.scraping.providers import SyntheticProvider
from services.scraping.worker import build
from shared.events import rpc
from shared.events.enrichment import EnrichmentCreatorRef, EnrichmentStartRequest

from ..support.fake_provider import Fault, fake_scrapecreators, profile_figures
from ..support.wait import eventually
from .conftest import job_body, reservation_status, stack, wait_for_status

START = "scraping.enrichments.start"


def creator(i: int, platform: str = "tiktok", **fields) -> dict:
    return {"platform": platform, "external_id": f"ext-{i}", "handle": f"handle{i}", **fields}


async def enrichments_used(engine: AsyncEngine, user_id: uuid.UUID) -> int:
    async with engine.connect() as conn:
        return await conn.scalar(
            sa.text("SELECT enrichments_current_month FROM user_usage WHERE user_id = :u"),
            {"u": user_id},
        )


async def set_enrichments_used(engine: AsyncEngine, user_id: uuid.UUID, used: int) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            sa.text("UPDATE user_usage SET enrichments_current_month = :n WHERE user_id = :u"),
            {"n": used, "u": user_id},
        )


async def reservation_of(engine: AsyncEngine, enrichment_id) -> uuid.UUID:
    async with engine.connect() as conn:
        return await conn.scalar(
            sa.text("SELECT reservation_id FROM scraping_enrichments WHERE id = :id"),
            {"id": enrichment_id},
        )


async def finished(api, headers, enrichment_id, within: float = 20.0) -> dict:
    """Poll ``GET /enrichments/{id}`` until it ended; returns its body."""
    body: dict = {}

    async def ended() -> bool:
        nonlocal body
        body = (await api.get(f"/enrichments/{enrichment_id}", headers=headers)).json()
        return body["status"] in ("completed", "error")

    await eventually(ended, within=within)
    return body


async def settled(engine: AsyncEngine, user_id, enrichment_id, expected_used: int) -> None:
    reservation_id = await reservation_of(engine, enrichment_id)

    async def done() -> bool:
        status = await reservation_status(engine, reservation_id)
        return status in ("confirmed", "released") and (
            await enrichments_used(engine, user_id) == expected_used
        )

    await eventually(done, within=20)


class GatedProvider(SyntheticProvider):
    """The synthetic provider, whose profile calls wait until the test opens the gate."""

    def __init__(self) -> None:
        self.gate, self.calls = asyncio.Event(), 0

    async def profile(self, query):
        self.calls += 1
        await self.gate.wait()
        return await super().profile(query)


async def test_creators_are_enriched_and_only_the_fetched_ones_are_spent(
    committed, service_settings, account
):
    acct = await account()
    async with stack(service_settings) as api:
        body = {"creators": [creator(1), creator(2, "youtube"), creator(3, external_id="missing")]}
        created = await api.post("/enrichments", json=body, headers=acct.headers)
        assert created.status_code == 202, created.text
        assert {k: created.json()[k] for k in ("total", "done", "failed")} == {
            "total": 3, "done": 0, "failed": 0,
        }  # fmt: skip
        assert await enrichments_used(committed, acct.user.id) == 3  # reserved up front
        result = await finished(api, acct.headers, created.json()["id"])
        assert (result["status"], result["done"], result["failed"], result["fetched"]) == (
            "completed", 2, 1, 2,
        )  # fmt: skip
        items = {i["external_id"]: i for i in result["items"]}
        assert [i["external_id"] for i in result["items"]] == ["ext-1", "ext-2", "missing"]
        assert items["missing"]["status"] == "failed" and "missing" in items["missing"]["error"]
        profile = items["ext-1"]["profile"]
        assert items["ext-1"]["status"] == "fetched" and profile["synthetic"] is True
        assert set(profile) >= {
            "bio", "emails", "followers", "following", "posts", "engagement_rate", "avg_views",
            "links", "category", "verified", "enriched_at",
        }  # fmt: skip
        await settled(committed, acct.user.id, created.json()["id"], expected_used=2)

        latest = await api.get("/creators/tiktok/ext-1", headers=acct.headers)
        assert latest.status_code == 200 and latest.json()["profile"] == profile
        unknown = await api.get("/creators/tiktok/never-enriched", headers=acct.headers)
        assert (unknown.status_code, unknown.json()["code"]) == (404, "creator_not_found")
        other = await account()
        hidden = await api.get(f"/enrichments/{created.json()['id']}", headers=other.headers)
        assert (hidden.status_code, hidden.json()["code"]) == (404, "enrichment_not_found")


async def test_a_fresh_stored_profile_is_answered_from_storage_and_spends_nothing(
    committed, service_settings, account
):
    acct = await account()
    provider = GatedProvider()
    provider.gate.set()
    async with stack(service_settings, build=partial(build, provider=provider)) as api:
        first = await api.post(
            "/enrichments", json={"creators": [creator(7)]}, headers=acct.headers
        )
        await finished(api, acct.headers, first.json()["id"])
        await settled(committed, acct.user.id, first.json()["id"], expected_used=1)
        calls = provider.calls
        again = await api.post(
            "/enrichments", json={"creators": [creator(7), creator(8)]}, headers=acct.headers
        )
        assert again.json()["done"] == 1  # answered at once from storage
        result = await finished(api, acct.headers, again.json()["id"])
        assert [i["status"] for i in result["items"]] == ["cached", "fetched"]
        assert result["fetched"] == 1 and provider.calls == calls + 1
        await settled(committed, acct.user.id, again.json()["id"], expected_used=2)
    # With a zero TTL nothing counts as fresh: the creator is fetched (and spent) again.
    stale = service_settings.model_copy(update={"enrichment_ttl_days": 0})
    async with stack(stale, build=partial(build, provider=provider)) as api:
        third = await api.post(
            "/enrichments", json={"creators": [creator(7)]}, headers=acct.headers
        )
        result = await finished(api, acct.headers, third.json()["id"])
        assert result["items"][0]["status"] == "fetched"
        await settled(committed, acct.user.id, third.json()["id"], expected_used=3)


async def test_a_jobs_creators_are_enriched_from_its_stored_results(
    committed, service_settings, account
):
    acct = await account()
    async with stack(service_settings) as api:
        job = await api.post("/jobs", json=job_body(acct, target_results=20), headers=acct.headers)
        await wait_for_status(committed, job.json()["id"], "completed")
        found = (await api.get(f"/jobs/{job.json()['id']}/results", headers=acct.headers)).json()
        picked = found["items"][:3]
        body = {"job_id": job.json()["id"], "creator_keys": [c["creator_key"] for c in picked]}
        created = await api.post("/enrichments", json=body, headers=acct.headers)
        assert created.status_code == 202, created.text
        result = await finished(api, acct.headers, created.json()["id"])
        assert [(i["external_id"], i["handle"]) for i in result["items"]] == [
            (c["external_id"], c["username"]) for c in picked
        ]
        missing = {"job_id": job.json()["id"], "creator_keys": ["nobody-like-this"]}
        refused = await api.post("/enrichments", json=missing, headers=acct.headers)
        assert (refused.status_code, refused.json()["code"]) == (422, "creators_not_in_job")
        other = await account()
        foreign = await api.post("/enrichments", json=body, headers=other.headers)
        assert (foreign.status_code, foreign.json()["code"]) == (404, "job_not_found")


async def test_bad_bodies_are_422_and_spend_nothing(committed, service_settings, account):
    acct = await account()
    async with stack(service_settings) as api:
        for body in (
            {},
            {"creators": []},
            {"creators": [creator(i) for i in range(101)]},
            {"creators": [creator(1, platform="myspace")]},
            {"creators": [creator(1, handle="   ")]},
            {"creators": [creator(1)], "job_id": str(uuid.uuid4()), "creator_keys": ["a"]},
            {"job_id": str(uuid.uuid4())},
        ):
            response = await api.post("/enrichments", json=body, headers=acct.headers)
            assert (response.status_code, response.json()["code"]) == (422, "validation_error")
        assert await enrichments_used(committed, acct.user.id) == 0


async def test_twenty_concurrent_enrichments_at_the_limit_never_go_over_it(
    committed, service_settings, account
):
    acct = await account()
    await set_enrichments_used(committed, acct.user.id, 495)  # growth: 500 a month
    async with stack(service_settings) as api:
        answers = await asyncio.gather(
            *(
                api.post("/enrichments", json={"creators": [creator(i)]}, headers=acct.headers)
                for i in range(20)
            )
        )
        codes = sorted(r.status_code for r in answers)
        assert codes == [202] * 5 + [403] * 15
        assert {r.json()["code"] for r in answers if r.status_code == 403} == {
            "enrichments_limit_reached"
        }
        assert await enrichments_used(committed, acct.user.id) == 500
        for r in answers:
            if r.status_code == 202:
                await finished(api, acct.headers, r.json()["id"])
                # Every creator was fetched: each hold is settled as fully used.
                await settled(committed, acct.user.id, r.json()["id"], expected_used=500)
        async with committed.connect() as conn:
            holds = await conn.scalar(
                sa.text(
                    "SELECT count(*) FROM usage_reservations WHERE user_id = :u"
                    " AND resource = 'enrichments' AND status = 'confirmed'"
                ),
                {"u": acct.user.id},
            )
        assert holds == 5


async def test_one_idempotency_key_sent_ten_times_at_once_enriches_once(
    committed, service_settings, account
):
    acct = await account()
    headers = {**acct.headers, "Idempotency-Key": "enrich-once"}
    body = {"creators": [creator(1), creator(2)]}
    async with stack(service_settings) as api:
        answers = await asyncio.gather(
            *(api.post("/enrichments", json=body, headers=headers) for _ in range(10))
        )
        ok = [r for r in answers if r.status_code == 202]
        assert ok and all(r.status_code in (202, 409) for r in answers)
        assert len({r.json()["id"] for r in ok}) == 1
        async with committed.connect() as conn:
            n = await conn.scalar(
                sa.text("SELECT count(*) FROM scraping_enrichments WHERE user_id = :u"),
                {"u": acct.user.id},
            )
        assert n == 1 and await enrichments_used(committed, acct.user.id) == 2


async def test_billing_down_is_503_and_nothing_is_created(committed, service_settings, account):
    acct = await account()
    async with stack(service_settings, billing=False) as api:
        response = await api.post(
            "/enrichments", json={"creators": [creator(1)]}, headers=acct.headers
        )
    assert (response.status_code, response.json()["code"]) == (503, "billing_unavailable")
    async with committed.connect() as conn:
        n = await conn.scalar(
            sa.text("SELECT count(*) FROM scraping_enrichments WHERE user_id = :u"),
            {"u": acct.user.id},
        )
    assert n == 0


async def test_the_monthly_reset_keeps_an_in_flight_enrichment_held(
    committed, service_settings, account
):
    acct = await account()
    await set_enrichments_used(committed, acct.user.id, 40)
    provider = GatedProvider()
    async with stack(service_settings, build=partial(build, provider=provider)) as api:
        created = await api.post(
            "/enrichments",
            json={"creators": [creator(1), creator(2), creator(3, external_id="missing-3")]},
            headers=acct.headers,
        )
        assert created.status_code == 202
        assert await enrichments_used(committed, acct.user.id) == 43

        async def working() -> bool:
            return provider.calls >= 1

        await eventually(working)
        async with committed.begin() as conn:
            await conn.execute(
                sa.text("UPDATE user_usage SET usage_reset_date = :d WHERE user_id = :u"),
                {"d": datetime(2026, 1, 1, tzinfo=UTC), "u": acct.user.id},
            )
        async with AsyncSession(committed) as session, session.begin():
            assert await usage.reset_monthly_usage(session, now=datetime.now(UTC)) >= 1
        assert await enrichments_used(committed, acct.user.id) == 3  # only the live hold
        provider.gate.set()
        await finished(api, acct.headers, created.json()["id"])
        # Two fetched stay counted, the failed one is given back, and nothing goes negative.
        await settled(committed, acct.user.id, created.json()["id"], expected_used=2)


async def test_the_real_adapter_through_an_outage_enriches_every_creator_without_dead_letters(
    committed, service_settings, account
):
    """5xx, 429 and timeouts beyond the adapter's own retries send the work item back to the
    queue (transient, never dead-lettered); the enrichment completes once the provider answers,
    and an unknown creator fails for good without spending."""
    acct = await account()
    async with fake_scrapecreators() as (fake, url):
        settings = service_settings.model_copy(
            update={
                "scraping_provider": "scrapecreators",
                "scraping_provider_base_url": url,
                "scraping_provider_api_key": "test-key",
                "events_retry_max_seconds": 0.2,
            }
        )
        faults = [Fault(status=503), Fault(status=429, retry_after=0), Fault(status=500)] * 3
        fake.script(*faults)
        body = {
            "creators": [
                creator(1, handle="dancer"),
                creator(2, "instagram", handle="photog"),
                creator(3, "youtube", external_id="UCchan"),
                creator(4, handle="missing_one"),
            ]
        }
        async with stack(settings) as api:
            created = await api.post("/enrichments", json=body, headers=acct.headers)
            result = await finished(api, acct.headers, created.json()["id"], within=30)
            await settled(committed, acct.user.id, created.json()["id"], expected_used=3)
    statuses = {i["handle"]: i["status"] for i in result["items"]}
    assert statuses == {
        "dancer": "fetched", "photog": "fetched", "handle3": "fetched", "missing_one": "failed",
    }  # fmt: skip
    tiktok = next(i for i in result["items"] if i["handle"] == "dancer")["profile"]
    assert tiktok["followers"] == profile_figures("dancer")["followers"]
    assert tiktok["source"] == "scrapecreators" and tiktok["synthetic"] is False
    assert len(fake.requests) == len(faults) + 4  # every fault was met and retried
    async with committed.connect() as conn:
        assert await conn.scalar(sa.text("SELECT count(*) FROM dead_letters")) == 0


async def test_the_start_request_is_idempotent_by_operation_and_refuses_blank_creators(
    committed, service_settings, account, nc, nats_prefix
):
    """``scraping.enrichments.start`` (campaign's way in): the operation id is the enrichment's
    id, so asking again finds the same enrichment and reserves nothing more."""
    acct = await account()
    operation = uuid.uuid4()
    ask = EnrichmentStartRequest(
        user_id=acct.user.id,
        operation_id=operation,
        creators=[EnrichmentCreatorRef(platform="tiktok", external_id="a-1", handle="one")],
    )
    async with stack(service_settings):
        first = await rpc.request(nc, START, ask, prefix=nats_prefix, timeout=10)
        again = await rpc.request(nc, START, ask, prefix=nats_prefix, timeout=10)
        assert first.id == again.id == operation and first.total == 1
        assert await enrichments_used(committed, acct.user.id) == 1
        blank = EnrichmentStartRequest(
            user_id=acct.user.id,
            operation_id=uuid.uuid4(),
            creators=[EnrichmentCreatorRef(platform="tiktok", external_id="b-1", handle="@")],
        )
        with pytest.raises(rpc.RemoteError) as refused:
            await rpc.request(nc, START, blank, prefix=nats_prefix, timeout=10)
    assert (refused.value.status_code, refused.value.code) == (422, "no_creators_to_enrich")
    assert await enrichments_used(committed, acct.user.id) == 1
