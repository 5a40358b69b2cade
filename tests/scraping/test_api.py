"""The jobs API without workers: validation, ownership, listing filters, result paging."""

import uuid

import orjson
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.scraping.repository import JobRepository
from shared.models import ScrapingJob

from ..factories import make_campaign, make_job
from ..support.services import running_api
from .conftest import job_body


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ({"platform": "myspace"}, "platform"),
        ({"search_type": "lookalike"}, "search_type"),
        ({"keywords": []}, "keyword search needs"),
        ({"keywords": None}, "keyword search needs"),
        ({"keywords": [f"kw{i}" for i in range(51)]}, "keywords"),
        ({"keywords": ["x"]}, "2 to 100 characters"),
        ({"target_results": 0}, "target_results"),
        ({"target_results": 1001}, "target_results"),
        ({"region": "USA"}, "region"),
        ({"search_type": "similar", "keywords": None}, "needs target_username"),
        ({"search_type": "similar", "target_username": "a b", "keywords": None}, "handle"),
        ({"target_username": "someone"}, "not target_username"),
        ({"campaign_id": "not-a-uuid"}, "campaign_id"),
        ({"surprise": 1}, "surprise"),
    ],
)
async def test_invalid_jobs_are_refused_with_validation_errors(
    committed, service_settings, account, fields, where
):
    acct = await account()
    async with running_api("scraping", service_settings) as api:
        response = await api.post("/jobs", json=job_body(acct, **fields), headers=acct.headers)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["code"] == "validation_error"
    assert where in body["detail"] or where in str(body["errors"])


async def test_another_users_campaign_or_an_unknown_one_is_not_found(
    committed, service_settings, account
):
    mine, theirs = await account(), await account()
    async with running_api("scraping", service_settings) as api:
        for campaign_id in (theirs.campaign.id, uuid.uuid4()):
            body = job_body(mine, campaign_id=str(campaign_id))
            response = await api.post("/jobs", json=body, headers=mine.headers)
            assert response.status_code == 404
            assert response.json()["code"] == "campaign_not_found"
        assert (await api.post("/jobs", json=job_body(mine))).status_code == 401


async def test_another_users_job_results_and_cancel_are_not_found(
    committed, service_settings, account
):
    mine, theirs = await account(), await account()
    async with AsyncSession(committed, expire_on_commit=False) as session, session.begin():
        job = await make_job(session, theirs.campaign)
    async with running_api("scraping", service_settings) as api:
        for method, path in [
            ("GET", f"/jobs/{job.id}"),
            ("GET", f"/jobs/{job.id}/results"),
            ("POST", f"/jobs/{job.id}/cancel"),
        ]:
            response = await api.request(method, path, headers=mine.headers)
            assert response.status_code == 404, path
            assert "fitness" not in response.text
        listing = (await api.get("/jobs", headers=mine.headers)).json()
        assert listing["total"] == 0
        assert (await api.get(f"/jobs/{job.id}", headers=theirs.headers)).status_code == 200


async def test_listing_filters_by_campaign_status_and_keyword(committed, service_settings, account):
    acct = await account()
    async with AsyncSession(committed, expire_on_commit=False) as session, session.begin():
        other = await make_campaign(session, acct.user)
        a = await make_job(session, acct.campaign, keywords=["fitness", "yoga"])
        b = await make_job(session, acct.campaign, keywords=["cooking"], status="completed")
        c = await make_job(session, other, keywords=["yoga"], status="completed")
    async with running_api("scraping", service_settings) as api:

        async def ids(**params) -> list[str]:
            body = (await api.get("/jobs", params=params, headers=acct.headers)).json()
            assert body["total"] == len(body["items"])
            return sorted(j["id"] for j in body["items"])

        assert await ids(keyword="yoga") == sorted([str(a.id), str(c.id)])
        assert await ids(keyword="fitness") == [str(a.id)]
        assert await ids(keyword="yog") == []  # containment, not substring
        nul = await api.get("/jobs", params={"keyword": "yo\x00"}, headers=acct.headers)
        assert (nul.status_code, nul.json()["code"]) == (422, "validation_error")
        assert await ids(status="completed") == sorted([str(b.id), str(c.id)])
        assert await ids(campaign_id=str(acct.campaign.id), status="completed") == [str(b.id)]
        assert await ids(campaign_id=str(other.id), keyword="yoga") == [str(c.id)]
        bad = await api.get("/jobs", params={"status": "stuck"}, headers=acct.headers)
        assert bad.status_code == 422
        page = (await api.get("/jobs", params={"page_size": 2}, headers=acct.headers)).json()
        assert (page["total"], len(page["items"]), page["page"]) == (3, 2, 1)


async def test_results_pages_cover_every_creator_once_and_read_only_their_batches(
    committed, service_settings, account, statements
):
    acct = await account()
    async with AsyncSession(committed, expire_on_commit=False) as session, session.begin():
        job = await make_job(session, acct.campaign, target_results=1000)
        repo = JobRepository(session)
        sizes = [250, 3, 120, 250, 77]  # uneven batches, one at the 250 bound
        n = 0
        for size in sizes:
            creators = [
                (f"c{n + i}", {"creator_key": f"c{n + i}", "n": n + i}) for i in range(size)
            ]
            await repo.store_creators(job.id, job.platform, creators, size)
            n += size
        await session.execute(
            sa.update(ScrapingJob).where(ScrapingJob.id == job.id).values(processed_results=n)
        )
    async with running_api("scraping", service_settings) as api:
        seen, offset = [], 0
        while offset is not None:
            body = (
                await api.get(
                    f"/jobs/{job.id}/results",
                    params={"offset": offset, "limit": 64},
                    headers=acct.headers,
                )
            ).json()
            assert body["total"] == n and body["limit"] == 64
            seen.extend(c["n"] for c in body["items"])
            offset = body["next_offset"]
        assert seen == list(range(n))  # every creator, once, in order
        past = await api.get(f"/jobs/{job.id}/results", params={"offset": n}, headers=acct.headers)
        assert past.json()["items"] == [] and past.json()["next_offset"] is None
        too_big = await api.get(
            f"/jobs/{job.id}/results", params={"limit": 501}, headers=acct.headers
        )
        assert too_big.status_code == 422
    # The route's page is one statement, sliced in Postgres from the batches it overlaps.
    async with AsyncSession(committed) as session:
        repo = JobRepository(session)
        clerk = acct.user.user_id
        page = await repo.results_page(clerk, job.id, offset=600, limit=64)
        assert [c["n"] for c in orjson.loads(page.items_json)] == list(range(600, 664))
        with statements.counting():
            await repo.results_page(clerk, job.id, offset=300, limit=10)
        assert statements.count == 1


async def test_job_creation_is_rate_limited_per_user(committed, service_settings, account):
    settings = service_settings.model_copy(update={"rate_limit_job_creates_per_minute": 2})
    acct, other = await account(), await account()
    body = job_body(acct, campaign_id=str(uuid.uuid4()))  # refused after the limit check
    async with running_api("scraping", settings) as api:
        statuses = [
            (await api.post("/jobs", json=body, headers=acct.headers)).status_code for _ in range(3)
        ]
        assert statuses == [404, 404, 429]
        limited = await api.post("/jobs", json=body, headers=acct.headers)
        assert limited.json()["code"] == "rate_limited" and "retry-after" in limited.headers
        assert (await api.post("/jobs", json=body, headers=other.headers)).status_code == 404
