"""Read-only GETs run in autocommit (no BEGIN/COMMIT round trips); writes keep their transaction."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.billing.api import create_app as billing_app
from services.campaign.api import create_app as campaign_app
from services.identity.api import create_app as identity_app
from services.scraping.api import create_app as scraping_app
from services.scraping.repository import JobRepository
from shared import sqltrace
from shared.models import ScrapingJob

from ..factories import make_campaign, make_job, make_list, make_user
from ..support.http import serving


class Modes:
    """Records, per statement sent on an engine, whether its connection was in autocommit."""

    def __init__(self) -> None:
        self.seen: list[tuple[bool, str]] = []

    def __call__(self, cursor, statement, parameters) -> None:
        self.seen.append((cursor.connection.autocommit, statement.split()[0].upper()))


@asynccontextmanager
async def recorded(app) -> AsyncIterator[tuple[httpx.AsyncClient, Modes]]:
    modes = Modes()
    async with serving(app) as client:
        with sqltrace.recording(app.state.engine, modes):
            yield client, modes


async def get_all_autocommit(client: httpx.AsyncClient, modes: Modes, urls, headers) -> None:
    for url in urls:
        modes.seen.clear()
        response = await client.get(url, headers=headers)
        assert response.status_code == 200, (url, response.text)
        assert modes.seen, url
        assert all(autocommit for autocommit, _ in modes.seen), (url, modes.seen)


async def test_read_routes_run_without_a_transaction(service_settings, committed, signing_keys):
    async with AsyncSession(committed, expire_on_commit=False) as session:
        user = await make_user(session)
        campaign = await make_campaign(session, user)
        job = await make_job(session, campaign)
        creator_list = await make_list(session, user)
        await session.commit()
    headers = {"authorization": f"Bearer {signing_keys.token(user.user_id)}"}

    async with recorded(campaign_app(service_settings)) as (client, modes):
        await get_all_autocommit(
            client,
            modes,
            [
                "/campaigns",
                f"/campaigns/{campaign.id}",
                "/dashboard",
                "/lists",
                f"/lists/{creator_list.id}",
                f"/lists/{creator_list.id}/items",
            ],
            headers,
        )
        # A write still runs in its request transaction (the probe can tell the difference);
        # only the caller's lookup before it is a read of its own.
        modes.seen.clear()
        response = await client.patch(
            f"/campaigns/{campaign.id}", json={"name": "renamed"}, headers=headers
        )
        assert response.status_code == 200, response.text
        (lookup_autocommit, lookup), *writes = modes.seen
        assert lookup_autocommit and lookup == "SELECT", modes.seen
        assert writes and not any(autocommit for autocommit, _ in writes), modes.seen
        assert "UPDATE" in {verb for _, verb in writes}, modes.seen

    async with recorded(scraping_app(service_settings)) as (client, modes):
        await get_all_autocommit(
            client, modes, ["/jobs", f"/jobs/{job.id}", f"/jobs/{job.id}/results"], headers
        )

    billing = billing_app(service_settings)
    async with recorded(billing) as (client, modes):
        await get_all_autocommit(client, modes, ["/plans", "/billing/status"], headers)
        # A read session that took a connection of SQLAlchemy's pool (its Core or ORM reads)
        # gave it back once the answer was sent: none is left checked out.
        pool = billing.state.engine.sync_engine.pool
        assert pool.checkedin() >= 1 and pool.checkedout() == 0

    # GET /me of a user that exists is one read; only a user not seen yet is created.
    async with recorded(identity_app(service_settings)) as (client, modes):
        await get_all_autocommit(client, modes, ["/me"], headers)
        assert len(modes.seen) == 1, modes.seen
        modes.seen.clear()
        newcomer = {"authorization": f"Bearer {signing_keys.token('user_newcomer_read_routes')}"}
        response = await client.get("/me", headers=newcomer)
        assert response.status_code == 200, response.text
        assert any(verb == "INSERT" and not autocommit for autocommit, verb in modes.seen)


async def test_results_page_is_one_statement_and_matches_the_stored_batches(
    service_settings, committed, signing_keys
):
    async with AsyncSession(committed, expire_on_commit=False) as session, session.begin():
        user, stranger = await make_user(session), await make_user(session)
        job = await make_job(session, await make_campaign(session, user), target_results=1000)
        repo = JobRepository(session)
        n = 0
        for size in (250, 3, 120, 250, 77):
            creators = [(f"c{n + i}", {"k": f"c{n + i}", "n": n + i}) for i in range(size)]
            await repo.store_creators(job.id, job.platform, creators, size)
            n += size
        await session.execute(
            sa.update(ScrapingJob).where(ScrapingJob.id == job.id).values(processed_results=n)
        )
    headers = {"authorization": f"Bearer {signing_keys.token(user.user_id)}"}
    windows = [(0, 100), (0, 500), (249, 5), (250, 3), (252, 200), (600, 64), (n - 1, 10), (n, 5)]
    async with recorded(scraping_app(service_settings)) as (client, modes):
        for offset, limit in windows:
            modes.seen.clear()
            response = await client.get(
                f"/jobs/{job.id}/results",
                params={"offset": offset, "limit": limit},
                headers=headers,
            )
            assert response.status_code == 200, response.text
            assert len(modes.seen) == 1  # caller, ownership, total and page at once
            body = response.json()
            expected = list(range(offset, min(offset + limit, n)))
            assert [c["n"] for c in body["items"]] == expected
            assert body["items"][:1] == [{"k": f"c{offset}", "n": offset}][: len(expected)]
            end = offset + len(expected)
            assert body | {"items": None} == {
                "items": None,
                "total": n,
                "offset": offset,
                "limit": limit,
                "next_offset": end if end < n and expected else None,
            }
        stranger_headers = {"authorization": f"Bearer {signing_keys.token(stranger.user_id)}"}
        for who in (stranger_headers, {"authorization": f"Bearer {signing_keys.token('nobody')}"}):
            response = await client.get(f"/jobs/{job.id}/results", headers=who)
            assert response.status_code == 404 and response.json()["code"] == "job_not_found"
