"""An enrichment whose work never finishes (a provider outage that does not end) is ended by
the scheduled sweep: ``error``, its unfinished creators failed, billing settled once with what
was really fetched; a work item arriving later changes nothing."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from services.scraping import handlers
from services.scraping.providers import SyntheticProvider
from services.scraping.service import EnrichmentService
from shared.db import make_engine
from shared.events.enrichment import EnrichWorkItem

from ..support.fake_provider import Fault, fake_scrapecreators
from ..support.services import running_worker
from ..support.wait import eventually
from .conftest import stack
from .test_enrichments import creator, enrichments_used, finished, settled

TIMEOUT = timedelta(minutes=30)
LATER = timedelta(minutes=31)


async def completions(engine: AsyncEngine, enrichment_id) -> int:
    """How many settlement events the enrichment emitted (billing settles from each)."""
    async with engine.connect() as conn:
        return await conn.scalar(
            sa.text(
                "SELECT count(*) FROM events WHERE type LIKE 'scraping.enrichment.completed%'"
                " AND aggregate_id = :id"
            ),
            {"id": str(enrichment_id)},
        )


async def position_of(engine: AsyncEngine, enrichment_id, external_id: str) -> int:
    async with engine.connect() as conn:
        return await conn.scalar(
            sa.text(
                "SELECT position FROM scraping_enrichment_items"
                " WHERE enrichment_id = :id AND external_id = :x"
            ),
            {"id": enrichment_id, "x": external_id},
        )


async def counters(engine: AsyncEngine, enrichment_id) -> tuple:
    async with engine.connect() as conn:
        row = await conn.execute(
            sa.text(
                "SELECT status, done, failed, fetched FROM scraping_enrichments WHERE id = :id"
            ),
            {"id": enrichment_id},
        )
        return tuple(row.one())


class HeldProvider(SyntheticProvider):
    """The synthetic provider, holding the creators in ``held`` until the gate opens."""

    def __init__(self, held: set[str]) -> None:
        self.held, self.gate = held, asyncio.Event()

    async def profile(self, query):
        if query.external_id in self.held:
            await self.gate.wait()
        return await super().profile(query)


async def test_an_outage_that_never_ends_is_timed_out_and_only_the_fetched_creator_is_spent(
    committed, service_settings, account
):
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
        fake.script(Fault())  # the first profile call is answered...
        fake.always = Fault(status=503)  # ...then the provider is down for good
        body = {"creators": [creator(1, handle="first"), creator(2, handle="second")]}
        async with stack(settings) as api:
            created = await api.post("/enrichments", json=body, headers=acct.headers)
            assert created.status_code == 202, created.text
            enrichment_id = uuid.UUID(created.json()["id"])
            assert await enrichments_used(committed, acct.user.id) == 2  # reserved

            async def one_fetched_and_the_other_retried() -> bool:
                fetched = (await counters(committed, enrichment_id))[3]
                return fetched == 1 and len(fake.requests) >= 8

            await eventually(one_fetched_and_the_other_retried, within=30)
            # Not overdue yet: the sweep leaves it alone.
            async with AsyncSession(committed) as session, session.begin():
                assert await EnrichmentService(session).sweep_timeouts(TIMEOUT) == 0

            # What the scheduled "scraping.sweep_timeouts" job runs, half an hour on.
            async with AsyncSession(committed) as session, session.begin():
                ended = await EnrichmentService(session).sweep_timeouts(
                    TIMEOUT, now=datetime.now(UTC) + LATER
                )
            assert ended == 1
            result = await finished(api, acct.headers, enrichment_id)
            assert (result["status"], result["done"], result["failed"], result["fetched"]) == (
                "error", 1, 1, 1,
            )  # fmt: skip
            stuck = next(i for i in result["items"] if i["status"] == "failed")
            assert stuck["error"] == "timed out"
            # Billing settled the hold from what was really fetched: one of the two.
            await settled(committed, acct.user.id, enrichment_id, expected_used=1)

            # The stuck item's redelivery (the queue still retries it) and any late one find the
            # enrichment ended: no count moves, nothing is settled again.
            fake.always = None
            position = await position_of(committed, enrichment_id, stuck["external_id"])
            late = EnrichWorkItem(enrichment_id=enrichment_id, position=position)
            async with AsyncSession(committed) as session, session.begin():
                outcome = await EnrichmentService(session).handle_enrich(late, SyntheticProvider())
                await EnrichmentService(session).fail_item(late, "internal error")
                again = await EnrichmentService(session).sweep_timeouts(
                    TIMEOUT, now=datetime.now(UTC) + LATER
                )
            assert outcome.action == "gone" and again == 0
            assert await counters(committed, enrichment_id) == ("error", 1, 1, 1)
            assert await completions(committed, enrichment_id) == 1
            assert await enrichments_used(committed, acct.user.id) == 1


async def test_the_sweep_racing_the_last_items_settles_each_enrichment_exactly_once(
    committed, database_url, service_settings, account
):
    """Ten one-creator enrichments, each item handled while one sweep ends them all: whichever
    wins each row lock ends the enrichment; the other changes nothing. Both orders happen in
    every run: five items are held at the provider until the sweep has committed, five hold
    their enrichment's row lock until the sweep waits on it."""
    acct = await account()
    async with stack(service_settings, scraping_workers=0) as api:  # items wait in the queue
        ids = []
        for i in range(10):
            created = await api.post(
                "/enrichments", json={"creators": [creator(i)]}, headers=acct.headers
            )
            assert created.status_code == 202, created.text
            ids.append(uuid.UUID(created.json()["id"]))
        assert await enrichments_used(committed, acct.user.id) == 10

        provider = HeldProvider({f"ext-{i}" for i in range(5)})
        # Ten item transactions open at once, the sweep's and the watcher's: a pool for them.
        racing = make_engine(database_url, pool_size=14)
        locked, all_locked, sweep_waits = [], asyncio.Event(), asyncio.Event()

        async def handle(enrichment_id: uuid.UUID, holds_lock: bool) -> str:
            async with AsyncSession(racing) as session, session.begin():
                work = EnrichWorkItem(enrichment_id=enrichment_id, position=0)
                outcome = await EnrichmentService(session).handle_enrich(work, provider)
                if holds_lock:  # it ended its enrichment and still holds the row lock
                    locked.append(enrichment_id)
                    if len(locked) == 5:
                        all_locked.set()
                    await sweep_waits.wait()  # commit only once the sweep waits on the lock
            return outcome.action

        async def sweep() -> int:
            await all_locked.wait()
            async with AsyncSession(racing) as session, session.begin():
                # The scheduled job's own handler, with a bound everything is past.
                ran = await handlers.sweep_timeouts(timedelta(0))(session, None)
            provider.gate.set()  # committed: the held items go on now, and find them ended
            return ran["enrichments_timed_out"]

        async def sweep_blocked() -> bool:
            async with racing.connect() as conn:
                waiting = await conn.scalar(
                    sa.text(
                        "SELECT count(*) FROM pg_stat_activity"
                        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                    )
                )
            if waiting:
                sweep_waits.set()
            return bool(waiting)

        try:
            *actions, swept, _ = await asyncio.gather(
                *(handle(e, holds_lock=i >= 5) for i, e in enumerate(ids)),
                sweep(),
                eventually(sweep_blocked, within=20),
            )
        finally:
            await racing.dispose()
        # The first five: swept while their items were at the provider, which then found them
        # ended. The last five: ended by their items, which the sweep waited for, then skipped.
        assert actions == ["gone"] * 5 + ["fetched"] * 5
        assert swept == 5
        fetched_by_items = 5
        for enrichment_id, action in zip(ids, actions, strict=True):
            expected = ("completed", 1, 0, 1) if action == "fetched" else ("error", 0, 1, 0)
            assert await counters(committed, enrichment_id) == expected
            assert await completions(committed, enrichment_id) == 1

        # The scraping worker now publishes the settlements and meets the queued items late.
        async with running_worker("scraping", service_settings):
            for enrichment_id in ids:
                await settled(committed, acct.user.id, enrichment_id, fetched_by_items)

            async def queue_drained() -> bool:
                async with committed.connect() as conn:
                    applied = await conn.scalar(
                        sa.text(
                            "SELECT count(*) FROM inbox WHERE service = 'scraping'"
                            " AND subject LIKE '%scraping.work.enrich.v1'"
                        )
                    )
                return applied >= 10

            await eventually(queue_drained, within=20)
        for enrichment_id, action in zip(ids, actions, strict=True):
            expected = ("completed", 1, 0, 1) if action == "fetched" else ("error", 0, 1, 0)
            assert await counters(committed, enrichment_id) == expected
            assert await completions(committed, enrichment_id) == 1
        assert await enrichments_used(committed, acct.user.id) == fetched_by_items
