"""Several workers, redeliveries and a killed worker never store a creator twice or lose one."""

import asyncio
import functools
import uuid
from collections import Counter

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.scraping.providers import SearchQuery, SyntheticProvider
from services.scraping.schemas import JobCreate
from services.scraping.service import JobService
from services.scraping.worker import build
from shared.events.catalogue import SearchWorkItem
from shared.events.envelope import Envelope, prefixed
from shared.worker import run_worker

from ..support.services import running_worker
from ..support.wait import eventually
from .conftest import job_body, load_job, stack, stored_keys, wait_for_status, wait_settled


class CountingProvider(SyntheticProvider):
    """The synthetic source, counting calls and optionally slow (to catch a job mid-flight)."""

    def __init__(self, delay: float = 0.0) -> None:
        self.calls, self.delay, self.in_flight = 0, delay, 0

    async def search(self, query, cursor):
        self.calls += 1
        self.in_flight += 1
        try:
            if self.delay:
                await asyncio.sleep(self.delay)  # a slow provider, not a synchronisation
            return await super().search(query, cursor)
        finally:
            self.in_flight -= 1


async def unique_across(terms: list[str], platform: str = "tiktok") -> int:
    provider, keys = SyntheticProvider(), set()
    for term in terms:
        cursor = None
        while True:
            page = await provider.search(SearchQuery(platform, "keyword", term), cursor)
            keys |= {c.creator_key for c in page.creators}
            if page.exhausted:
                break
            cursor = page.next_cursor
    return len(keys)


async def assert_consistent(engine, job_id) -> int:
    """Batches, dedupe keys and the job's count agree; ordinals are contiguous; no duplicates."""
    keys = await stored_keys(engine, job_id)
    assert not [k for k, n in Counter(keys).items() if n > 1]
    async with engine.connect() as conn:
        dedupe = await conn.scalar(
            sa.text("SELECT count(*) FROM scraping_job_creators WHERE job_id = :j"), {"j": job_id}
        )
        batches = (
            await conn.execute(
                sa.text(
                    "SELECT first_ordinal, creator_count FROM scraping_results"
                    " WHERE job_id = :j ORDER BY first_ordinal"
                ),
                {"j": job_id},
            )
        ).all()
    ordinal = 0
    for first, count in batches:
        assert first == ordinal
        ordinal += count
    job = await load_job(engine, job_id)
    assert len(keys) == dedupe == ordinal == job.processed_results
    return len(keys)


async def _publish_item(nc, prefix: str, item: SearchWorkItem, envelope_id=None) -> None:
    from datetime import UTC, datetime

    envelope = Envelope(
        id=envelope_id or uuid.uuid4(), type="scraping.work.search", version=1,
        source="scraping", occurred_at=datetime.now(UTC),
        aggregate={"type": "scraping_job", "id": str(item.job_id)},
        data=item.model_dump(mode="json"),
    )  # fmt: skip
    await nc.jetstream().publish(
        prefixed(envelope.subject, prefix), envelope.to_json(),
        headers={"Nats-Msg-Id": str(envelope.id)},
    )  # fmt: skip


async def test_two_workers_share_the_queue_and_redelivered_items_store_nobody_twice(
    committed, service_settings, nats_prefix, nc, account
):
    acct = await account()
    terms = [f"topic{i}:60" for i in range(8)]  # the popular pool overlaps across terms
    expected = await unique_across(terms)
    a, b = CountingProvider(delay=0.01), CountingProvider(delay=0.01)
    options = {"batch": 2}
    async with (
        running_worker("billing", service_settings),
        running_worker(
            "scraping", service_settings,
            build=functools.partial(build, provider=a, search_options=options),
        ),
        running_worker(
            "scraping", service_settings,
            build=functools.partial(build, provider=b, search_options=options),
        ),
        stack(service_settings, billing=False, scraping_workers=0) as api,
    ):  # fmt: skip
        created = await api.post(
            "/jobs", json=job_body(acct, keywords=terms, target_results=1000), headers=acct.headers
        )
        job_id = uuid.UUID(created.json()["id"])
        # Redeliveries that the inbox cannot catch (new envelope ids): every first page twice
        # more, racing the originals on both workers.
        for term in terms:
            for _ in range(2):
                await _publish_item(nc, nats_prefix, SearchWorkItem(job_id=job_id, keyword=term))
        job = await wait_for_status(committed, job_id, "completed", within=30)
        assert await assert_consistent(committed, job_id) == expected
        assert a.calls > 0 and b.calls > 0  # both workers took work
        await wait_settled(committed, acct.user.id, job.reservation_id, expected)


async def test_the_same_item_handled_concurrently_is_stored_once(committed, account):
    acct = await account()
    body = JobCreate.model_validate(job_body(acct, keywords=["race:40"], target_results=1000))
    async with AsyncSession(committed, expire_on_commit=False) as session, session.begin():
        job = await JobService(session).insert(
            job_id=uuid.uuid4(), user_id=acct.user.id, body=body, reservation_id=None,
            provider="synthetic",
        )  # fmt: skip
    item = SearchWorkItem(job_id=job.id, cursor=0, keyword="race:40")
    provider = SyntheticProvider()

    async def handle():
        async with AsyncSession(committed, expire_on_commit=False) as session, session.begin():
            return (await JobService(session).handle_search(item, provider)).action

    outcomes = await asyncio.gather(*(handle() for _ in range(6)))
    assert sorted(outcomes) == ["stale"] * 5 + ["stored"]
    first = await provider.search(SearchQuery("tiktok", "keyword", "race:40"), None)
    assert await assert_consistent(committed, job.id) == len(
        {c.creator_key for c in first.creators}
    )


async def test_a_worker_killed_mid_job_loses_and_duplicates_nothing(
    committed, service_settings, account
):
    acct = await account()
    expected = await unique_across(["kill:240"])
    options = {"ack_wait": 1.0}
    slow = CountingProvider(delay=0.3)
    async with (
        running_worker("billing", service_settings),
        stack(service_settings, billing=False, scraping_workers=0) as api,
    ):
        doomed = asyncio.create_task(
            run_worker(
                "scraping",
                settings=service_settings,
                build=functools.partial(build, provider=slow, search_options=options),
            )
        )
        created = await api.post(
            "/jobs", json=job_body(acct, keywords=["kill:240"], target_results=1000),
            headers=acct.headers,
        )  # fmt: skip
        job_id = created.json()["id"]

        async def partly_done() -> bool:
            job = await load_job(committed, job_id)
            return job.processed_results > 0

        await eventually(partly_done)

        async def mid_page() -> bool:  # inside a provider call: its item is neither done nor acked
            return slow.in_flight > 0

        await eventually(mid_page)
        doomed.cancel()  # no graceful stop: the in-flight item is neither committed nor acked
        await asyncio.gather(doomed, return_exceptions=True)
        midway = await load_job(committed, job_id)
        assert midway.status == "processing"
        async with running_worker(
            "scraping", service_settings, build=functools.partial(build, search_options=options)
        ):
            job = await wait_for_status(committed, job_id, "completed", within=30)
        assert await assert_consistent(committed, job_id) == expected
        await wait_settled(committed, acct.user.id, job.reservation_id, expected)
