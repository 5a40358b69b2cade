"""Enriching a list: campaign asks scraping (request/reply) for one enrichment of the list's
creators, and ``scraping.creator.enriched`` brings e-mail, followers and engagement rate back
into the list's items and its CSV export."""

import csv
import io
from contextlib import AsyncExitStack

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from ..support.services import running_api, running_worker
from ..support.wait import eventually


async def on_growth_plan(engine: AsyncEngine, user_id, *, enrichments_used: int = 0) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            sa.text(
                "UPDATE user_subscriptions SET current_plan = 'growth',"
                " subscription_status = 'active' WHERE user_id = :u"
            ),
            {"u": user_id},
        )
        await conn.execute(
            sa.text("UPDATE user_usage SET enrichments_current_month = :n WHERE user_id = :u"),
            {"n": enrichments_used, "u": user_id},
        )


async def a_list(api, owner, creators: list[dict]) -> str:
    list_id = (await api.post("/lists", json={"name": "L"}, headers=owner.headers)).json()["id"]
    if creators:
        added = await api.post(
            f"/lists/{list_id}/items", json={"items": creators}, headers=owner.headers
        )
        assert added.status_code in (200, 201), added.text
    return list_id


CREATORS = [
    {"platform": "tiktok", "external_id": "tt-1", "handle": "dancer", "followers": 10},
    {"platform": "instagram", "external_id": "ig-1", "handle": "photog", "followers": 20},
    {"platform": "youtube", "external_id": "missing-yt", "handle": "gone", "followers": 30},
]


async def test_a_lists_creators_are_enriched_and_show_in_items_and_export(
    api, make_owner, committed, service_settings
):
    owner = await make_owner()
    await on_growth_plan(committed, owner.user.id)
    list_id = await a_list(api, owner, CREATORS)
    async with AsyncExitStack() as stack:
        for service in ("billing", "scraping", "campaign"):
            await stack.enter_async_context(running_worker(service, service_settings))
        scraping = await stack.enter_async_context(running_api("scraping", service_settings))
        started = await api.post(f"/lists/{list_id}/enrich", headers=owner.headers)
        assert started.status_code == 202, started.text
        assert started.json()["total"] == 3
        enrichment_id = started.json()["id"]
        detail: dict = {}

        async def ended() -> bool:
            nonlocal detail
            detail = (
                await scraping.get(f"/enrichments/{enrichment_id}", headers=owner.headers)
            ).json()
            return detail["status"] == "completed"

        await eventually(ended, within=20)
        profiles = {i["external_id"]: i["profile"] for i in detail["items"]}
        assert profiles["missing-yt"] is None  # the provider does not know it: spends nothing

        async def shown() -> bool:
            page = await api.get(f"/lists/{list_id}/items", headers=owner.headers)
            return all(i["email"] for i in page.json()["items"] if i["external_id"] != "missing-yt")

        await eventually(shown, within=20)
    items = {
        i["external_id"]: i
        for i in (await api.get(f"/lists/{list_id}/items", headers=owner.headers)).json()["items"]
    }
    for external_id in ("tt-1", "ig-1"):
        profile, item = profiles[external_id], items[external_id]
        assert item["email"] == profile["emails"][0]
        assert item["followers"] == profile["followers"] != CREATORS[0]["followers"]
        assert item["engagement_rate"] == round(profile["engagement_rate"], 4)
    assert items["missing-yt"]["email"] is None and items["missing-yt"]["followers"] == 30
    export = await api.get(f"/lists/{list_id}/export.csv", headers=owner.headers)
    rows = {r["external_id"]: r for r in csv.DictReader(io.StringIO(export.text))}
    assert rows["tt-1"]["email"] == profiles["tt-1"]["emails"][0]
    assert rows["tt-1"]["followers"] == str(profiles["tt-1"]["followers"])
    assert float(rows["ig-1"]["engagement_rate"]) == round(profiles["ig-1"]["engagement_rate"], 4)
    # The list's statistics still add up to the snapshot its items were added with.
    detail_list = (await api.get(f"/lists/{list_id}", headers=owner.headers)).json()
    assert detail_list["follower_sum"] == 60

    async def spent_two() -> bool:  # billing settles from the completion event
        async with committed.connect() as conn:
            used = await conn.scalar(
                sa.text("SELECT enrichments_current_month FROM user_usage WHERE user_id = :u"),
                {"u": owner.user.id},
            )
        return used == 2

    await eventually(spent_two, within=20)


async def test_enrich_refusals_have_their_own_codes(api, make_owner, committed, service_settings):
    owner = await make_owner()
    await on_growth_plan(committed, owner.user.id, enrichments_used=499)
    empty = await a_list(api, owner, [])
    full = await a_list(api, owner, CREATORS)
    # Scraping is not running: nothing answers the request, so nothing starts (fail closed).
    down = await api.post(f"/lists/{full}/enrich", headers=owner.headers)
    assert (down.status_code, down.json()["code"]) == (503, "scraping_unavailable")
    other = await make_owner()
    foreign = await api.post(f"/lists/{full}/enrich", headers=other.headers)
    assert (foreign.status_code, foreign.json()["code"]) == (404, "list_not_found")
    nothing = await api.post(f"/lists/{empty}/enrich", headers=owner.headers)
    assert (nothing.status_code, nothing.json()["code"]) == (422, "list_empty")
    big = await a_list(api, owner, [])
    for start in (0, 500, 1000):
        batch = [
            {"platform": "tiktok", "external_id": f"big-{i}", "handle": f"big{i}"}
            for i in range(start, min(start + 500, 1001))
        ]
        await api.post(f"/lists/{big}/items", json={"items": batch}, headers=owner.headers)
    too_big = await api.post(f"/lists/{big}/enrich", headers=owner.headers)
    assert (too_big.status_code, too_big.json()["code"]) == (422, "list_too_large")
    async with AsyncExitStack() as stack:
        for service in ("billing", "scraping"):
            await stack.enter_async_context(running_worker(service, service_settings))
        over = await api.post(f"/lists/{full}/enrich", headers=owner.headers)
    assert (over.status_code, over.json()["code"]) == (403, "enrichments_limit_reached")


async def test_a_client_cannot_write_enriched_fields_itself(api, make_owner):
    owner = await make_owner()
    spoof = {"enrichment": {"emails": ["fake@spoof.test"], "followers": 9_999_999}, "tier": "a"}
    list_id = await a_list(
        api,
        owner,
        [
            {
                "platform": "tiktok",
                "external_id": "sp-1",
                "handle": "spoof",
                "followers": 5,
                "metadata": spoof,
            }
        ],
    )
    item = (await api.get(f"/lists/{list_id}/items", headers=owner.headers)).json()["items"][0]
    assert (item["email"], item["followers"]) == (None, 5)
