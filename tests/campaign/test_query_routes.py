"""The query shapes every listing relies on, each through a real route: eager loading
(``GET /campaigns?include=jobs``, constant statements) and JSONB containment / key-exists
filters (``GET /lists?tag=`` / ``?any_tag=``, on a GIN index)."""

from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from ..factories import make_campaign, make_job, make_list
from .test_dashboard import counted_api


async def test_campaigns_with_jobs_cost_two_statements_for_any_page(
    service_settings, statements, make_owner, committed
):
    small, big = await make_owner(), await make_owner()
    async with AsyncSession(committed, expire_on_commit=False) as session:
        first = await make_campaign(session, small.user)
        job = await make_job(
            session, first, status="processing", processed_results=7, progress=Decimal("12.35")
        )
        for i in range(30):
            campaign = await make_campaign(session, big.user)
            for _ in range(i % 4):
                await make_job(session, campaign)
        await session.commit()
    async with counted_api(service_settings, statements) as (client, counter):
        costs = []
        for owner in (small, big):
            with counter.counting():
                response = await client.get(
                    "/campaigns?include=jobs&page_size=100", headers=owner.headers
                )
            assert response.status_code == 200, response.text
            costs.append(counter.count)
            body = response.json()
        # The caller, the page with its total, every job of the page: whatever the page holds.
        assert costs == [3, 3]
        assert body["total"] == 30 and len(body["items"]) == 30
        assert sum(len(c["jobs"]) for c in body["items"]) == sum(i % 4 for i in range(30))
        one = (await client.get("/campaigns?include=jobs", headers=small.headers)).json()
        assert one["items"][0]["jobs"][0]["id"] == str(job.id)
        assert one["items"][0]["jobs"][0]["processed_results"] == 7
        assert one["items"][0]["jobs"][0]["progress"] == 12.35  # percent, not truncated
        plain = (await client.get("/campaigns", headers=small.headers)).json()
        assert "jobs" not in plain["items"][0]
        refused = await client.get("/campaigns?include=everything", headers=small.headers)
        assert refused.status_code == 422 and refused.json()["code"] == "validation_error"


async def test_lists_filtered_by_all_or_any_tags(api, make_owner, committed):
    owner, other = await make_owner(), await make_owner()
    async with AsyncSession(committed, expire_on_commit=False) as session:
        both = await make_list(session, owner.user, tags=["fitness", "beauty"])
        fit = await make_list(session, owner.user, tags=["fitness"])
        await make_list(session, owner.user, tags=["travel"])
        await make_list(session, other.user, tags=["fitness", "beauty"])
        await session.commit()

    async def ids(query: str) -> set[str]:
        response = await api.get(f"/lists?{query}", headers=owner.headers)
        assert response.status_code == 200, response.text
        return {item["id"] for item in response.json()["items"]}

    assert await ids("tag=fitness") == {str(both.id), str(fit.id)}
    assert await ids("tag=fitness&tag=beauty") == {str(both.id)}
    assert await ids("any_tag=beauty&any_tag=fitness") == {str(both.id), str(fit.id)}
    assert await ids("tag=fitness&any_tag=beauty") == {str(both.id)}
    assert await ids("tag=nothing") == set()
    for bad in ("tag=", "tag=" + "x" * 101, "&".join(["any_tag=a"] * 11)):
        response = await api.get(f"/lists?{bad}", headers=owner.headers)
        assert response.status_code == 422, bad
        assert response.json()["code"] == "validation_error"
