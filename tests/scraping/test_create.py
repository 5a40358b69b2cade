"""Creating a job against a slow, failing or late billing, and against a campaign being deleted.

Billing is made slow the real way: a test transaction holds the user's ``user_usage`` row, so
billing's reserve (a conditional UPDATE of that row) waits on it.
"""

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.models import ScrapingJob, UsageReservation

from ..support.services import running_api, running_worker
from ..support.wait import eventually
from .conftest import creators_used, job_body, stack


@asynccontextmanager
async def usage_row_held(engine: AsyncEngine, user_id: uuid.UUID) -> AsyncIterator[None]:
    """Hold the user's usage row until the block ends: billing's reserve waits on it."""
    async with engine.connect() as conn, conn.begin():
        await conn.execute(
            sa.text("SELECT 1 FROM user_usage WHERE user_id = :u FOR UPDATE"), {"u": user_id}
        )
        yield


async def billing_waits_on_the_row(engine: AsyncEngine) -> bool:
    async with engine.connect() as conn:
        return bool(
            await conn.scalar(
                sa.text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND application_name = 'scout-billing-worker' AND wait_event_type = 'Lock'"
                )
            )
        )


async def _scalar(engine: AsyncEngine, stmt):
    async with engine.connect() as conn:
        return await conn.scalar(stmt)


async def test_billing_answering_with_an_internal_error_is_a_503_and_no_job(
    committed, service_settings, account
):
    acct = await account()
    # A bug at billing, for real: its reserve fails on a trigger that refuses every hold.
    async with committed.begin() as conn:
        await conn.execute(
            sa.text(
                "CREATE FUNCTION test_refuse_hold() RETURNS trigger LANGUAGE plpgsql AS $$"
                " BEGIN RAISE EXCEPTION 'refused by test'; END $$"
            )
        )
        await conn.execute(
            sa.text(
                "CREATE TRIGGER test_refuse_hold BEFORE INSERT ON usage_reservations"
                " FOR EACH ROW EXECUTE FUNCTION test_refuse_hold()"
            )
        )
    try:
        async with stack(service_settings, scraping_workers=0) as api:
            response = await api.post("/jobs", json=job_body(acct), headers=acct.headers)
    finally:
        async with committed.begin() as conn:
            await conn.execute(sa.text("DROP TRIGGER test_refuse_hold ON usage_reservations"))
            await conn.execute(sa.text("DROP FUNCTION test_refuse_hold()"))
    assert (response.status_code, response.json()["code"]) == (503, "billing_unavailable")
    assert await _scalar(committed, sa.select(sa.func.count()).select_from(ScrapingJob)) == 0


async def test_no_transaction_is_held_open_while_billing_is_asked(
    committed, service_settings, account
):
    acct = await account()
    async with stack(service_settings, scraping_workers=0) as api:
        async with usage_row_held(committed, acct.user.id):
            creating = asyncio.create_task(
                api.post("/jobs", json=job_body(acct), headers=acct.headers)
            )
            await eventually(lambda: billing_waits_on_the_row(committed))
            open_transactions = await _scalar(
                committed,
                sa.text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND application_name = 'scout-scraping' AND xact_start IS NOT NULL"
                ),
            )
            assert open_transactions == 0  # the API waits on billing holding no transaction
        response = await creating
    assert response.status_code == 202, response.text


async def test_a_reserve_that_commits_after_the_caller_gave_up_holds_nothing(
    committed, service_settings, account
):
    """Billing answers after the API stopped waiting: the API gives the key up, and the hold
    billing commits later is given back at once instead of waiting out its TTL."""
    acct = await account()
    impatient = service_settings.model_copy(update={"quota_timeout_seconds": 0.5})
    async with (
        running_worker("billing", service_settings),
        running_api("scraping", impatient) as api,
    ):
        async with usage_row_held(committed, acct.user.id):
            response = await api.post("/jobs", json=job_body(acct), headers=acct.headers)
            assert (response.status_code, response.json()["code"]) == (503, "billing_unavailable")
            # Billing is still working on the reserve (it waits on the row) as we let go.
            assert await billing_waits_on_the_row(committed)

        async def given_back() -> bool:
            status = await _scalar(committed, sa.select(UsageReservation.status))
            return status == "released" and await creators_used(committed, acct.user.id) == 0

        await eventually(given_back)
    assert await _scalar(committed, sa.select(sa.func.count()).select_from(ScrapingJob)) == 0


async def _deletions_purged(engine: AsyncEngine, n: int) -> bool:
    """Scraping has applied ``n`` campaign deletions (its inbox holds them)."""
    stmt = sa.text("SELECT count(*) FROM inbox WHERE consumer = 'scraping_campaign'")
    return await _scalar(engine, stmt) == n


async def _jobs_of_deleted_campaigns(engine: AsyncEngine) -> int:
    return await _scalar(
        engine,
        sa.text(
            "SELECT count(*) FROM scraping_jobs j JOIN campaigns c ON c.id = j.campaign_id"
            " WHERE c.deleted_at IS NOT NULL"
        ),
    )


async def test_no_job_survives_on_a_campaign_deleted_while_it_was_being_created(
    committed, service_settings, account
):
    acct = await account(creators_limit=-1)
    async with committed.begin() as conn:  # as many campaigns as the rounds need
        await conn.execute(
            sa.text("UPDATE user_usage SET plan_campaigns_limit = -1 WHERE user_id = :u"),
            {"u": acct.user.id},
        )
    body = job_body(acct, target_results=10)
    async with (
        running_worker("campaign", service_settings),
        running_worker("scraping", service_settings),
        stack(service_settings, scraping_workers=0) as scraping,
        running_api("campaign", service_settings) as campaign,
    ):
        # The deletion lands, and scraping purges the campaign's jobs, while the create waits
        # on billing: the create must not attach a job afterwards.
        async with usage_row_held(committed, acct.user.id):
            creating = asyncio.create_task(scraping.post("/jobs", json=body, headers=acct.headers))
            await eventually(lambda: billing_waits_on_the_row(committed))
            deleted = await campaign.delete(f"/campaigns/{acct.campaign.id}", headers=acct.headers)
            assert deleted.status_code == 204
            await eventually(lambda: _deletions_purged(committed, 1))
        created = await creating
        assert (created.status_code, created.json()["code"]) == (404, "campaign_not_found")

        # Then many rounds of create and delete at the same moment, on fresh campaigns.
        rounds = 12
        outcomes = []
        for _ in range(rounds):
            made = await campaign.post("/campaigns", json={"name": "race"}, headers=acct.headers)
            campaign_id = made.json()["id"]
            outcomes += await asyncio.gather(
                scraping.post(
                    "/jobs", json={**body, "campaign_id": campaign_id}, headers=acct.headers
                ),
                campaign.delete(f"/campaigns/{campaign_id}", headers=acct.headers),
            )
        assert {r.status_code for r in outcomes} <= {202, 204, 404}, [r.text for r in outcomes]
        await eventually(lambda: _deletions_purged(committed, rounds + 1), within=30)
        assert await _jobs_of_deleted_campaigns(committed) == 0

        async def holds_settled() -> bool:  # the refused create gave its hold back too
            stmt = sa.select(sa.func.count()).where(UsageReservation.status == "reserved")
            return await _scalar(committed, stmt) == 0

        await eventually(holds_settled, within=30)
