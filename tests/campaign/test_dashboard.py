"""The dashboard's content, and constant statement counts for the dashboard and the listings."""

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.campaign.api import create_app
from services.campaign.repository import CampaignRepository, DashboardRepository
from shared import sqltrace
from shared.events.outbox import record_event
from shared.models import ScrapingJob

from ..factories import make_campaign, make_job, make_list
from ..support.http import serving


async def seed(engine, owner, *, campaigns: int, jobs_each: int, items: int) -> None:
    async with AsyncSession(engine, expire_on_commit=False) as session:
        for i in range(campaigns):
            campaign = await make_campaign(session, owner.user, status="active" if i else "draft")
            for _ in range(jobs_each):
                await make_job(session, campaign, status="completed", processed_results=10)
        creator_list = await make_list(session, owner.user)
        archived = await make_list(session, owner.user, is_archived=True)
        await session.commit()
    async with engine.begin() as conn:
        for target, count, bucket in ((creator_list, items, "shortlist"), (archived, 3, "booked")):
            await conn.execute(
                sa.text(
                    "WITH p AS (INSERT INTO creator_profiles (platform, external_id, handle)"
                    " SELECT 'tiktok', :tag || g, 'h' || g FROM generate_series(1, :n) g"
                    " RETURNING id)"
                    " INSERT INTO list_items (list_id, creator_id, bucket) SELECT :list, id, :bucket FROM p"
                ),
                {"tag": uuid.uuid4().hex, "n": count, "list": target.id, "bucket": bucket},
            )


async def test_dashboard_counts_searches_pipeline_and_recent_activity(api, make_owner, committed):
    owner = await make_owner()
    await seed(committed, owner, campaigns=3, jobs_each=2, items=4)
    async with committed.begin() as conn:
        # An old search is outside the 30-day window.
        old = datetime.now(UTC) - timedelta(days=40)
        await conn.execute(
            sa.update(ScrapingJob)
            .where(ScrapingJob.id == sa.select(ScrapingJob.id).limit(1).scalar_subquery())
            .values(created_at=old)
        )
    async with AsyncSession(committed) as session, session.begin():
        for n in range(12):
            await record_event(
                session,
                service="campaign",
                type="campaign.campaign.created",
                aggregate_type="campaign",
                aggregate_id=uuid.uuid4(),
                user_id=owner.user.id,
                data={
                    "campaign_id": uuid.uuid4(),
                    "user_id": owner.user.id,
                    "name": f"n{n}",
                    "status": "draft",
                    "search_type": "keyword",
                },
            )
    body = (await api.get("/dashboard", headers=owner.headers)).json()
    assert body["campaigns"] == {
        "total": 3,
        "draft": 1,
        "active": 2,
        "completed": 0,
        "archived": 0,
    }
    assert body["searches_last_30_days"] == 5
    assert body["searches_completed_last_30_days"] == 5
    assert body["creators_found_last_30_days"] == 50
    assert body["lists"] == 2
    # Archived lists are out of the pipeline.
    assert body["pipeline"]["shortlist"] == 4 and body["pipeline"]["booked"] == 0
    assert body["pipeline"]["total"] == 4
    recent = body["recent_activity"]
    assert len(recent) == 10 and recent[0]["data"]["name"] == "n11"


@asynccontextmanager
async def counted_api(settings, statements) -> AsyncIterator[tuple[httpx.AsyncClient, object]]:
    """The real API with a statement counter (the fixture's kind) on the app's own engine."""
    app = create_app(settings)
    counter = type(statements)()
    async with serving(app) as client:
        with sqltrace.recording(app.state.engine, counter):
            yield client, counter


async def test_listing_detail_and_dashboard_cost_constant_statements(
    service_settings, statements, make_owner, committed
):
    small, big = await make_owner(), await make_owner()
    await seed(committed, small, campaigns=1, jobs_each=1, items=1)
    await seed(committed, big, campaigns=25, jobs_each=4, items=300)

    async def cost(client, counter, owner, url: str) -> int:
        with counter.counting():
            response = await client.get(url, headers=owner.headers)
        assert response.status_code == 200, response.text
        return counter.count

    async with counted_api(service_settings, statements) as (client, counter):
        for url in ("/campaigns?page_size=100", "/dashboard", "/lists"):
            # One statement resolves the caller, one answers.
            assert await cost(client, counter, small, url) == 2, url
            assert await cost(client, counter, big, url) == 2, url
        for owner in (small, big):
            listing = (await client.get("/campaigns", headers=owner.headers)).json()
            url = f"/campaigns/{listing['items'][0]['id']}"
            assert await cost(client, counter, owner, url) == 3  # user, campaign, job summary
    # The same at the query layer, on the test engine with the `statements` fixture.
    async with AsyncSession(committed) as session:
        with statements.counting():
            page = await CampaignRepository(session).page(big.user.id, page=1, page_size=100)
            overview = await DashboardRepository(session).overview(big.user.id)
    assert statements.count == 2
    assert page.total == 25 and overview["pipeline"]["total"] == 300
