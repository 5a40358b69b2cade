"""``campaign_user_stats``: the per-user counters behind the dashboard and the campaigns page's
total follow every way rows are written (API, raw SQL, cascades, the purge), stay exact under
concurrent writers, and make those reads cost the same whatever the user owns."""

import asyncio
import uuid

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.campaign.repository import CampaignRepository
from shared.models import Campaign, CampaignUserStats, CreatorList, User
from tooling.perf.analyze import STATS_DRIFT

from ..factories import make_campaign, make_list
from .conftest import scalar


async def drift(engine) -> int:
    async with engine.connect() as conn:
        return (await conn.execute(sa.text(STATS_DRIFT))).scalar_one()


async def stats(engine, user_id: uuid.UUID) -> dict[str, int]:
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                sa.select(CampaignUserStats).where(CampaignUserStats.user_id == user_id)
            )
        ).first()
    if row is None:
        return {}
    skip = {"id", "user_id", "created_at", "updated_at"}
    return {k: v for k, v in row._mapping.items() if k not in skip}


def creators(tag: str, n: int, bucket: str = "backlog") -> list[dict]:
    return [
        {"platform": "tiktok", "external_id": f"{tag}{i}", "handle": f"h{tag}{i}", "bucket": bucket}
        for i in range(n)
    ]


async def test_counters_follow_every_write_path(api, make_owner, committed):
    owner, other = await make_owner(), await make_owner()
    uid = owner.user.id
    async with AsyncSession(committed, expire_on_commit=False) as session:
        campaigns = [await make_campaign(session, owner.user) for _ in range(4)]
        await make_campaign(session, other.user, status="active")
        await session.commit()
    assert (await stats(committed, uid))["campaigns"] == 4
    async with committed.begin() as conn:
        # Raw SQL: a bulk status change, a rename (moves nothing), a soft and a hard delete.
        await conn.execute(
            sa.update(Campaign)
            .where(Campaign.id.in_([c.id for c in campaigns[:2]]))
            .values(status="active")
        )
        await conn.execute(
            sa.update(Campaign).where(Campaign.id == campaigns[2].id).values(name="renamed")
        )
        await conn.execute(
            sa.update(Campaign)
            .where(Campaign.id == campaigns[2].id)
            .values(deleted_at=sa.func.now())
        )
        await conn.execute(sa.delete(Campaign).where(Campaign.id == campaigns[3].id))
    got = await stats(committed, uid)
    assert (got["campaigns"], got["draft"], got["active"]) == (2, 0, 2)

    # Lists and items through the API: adds, a bucket change, a removal, archive and back.
    kept = (await api.post("/lists", json={"name": "kept"}, headers=owner.headers)).json()["id"]
    gone = (await api.post("/lists", json={"name": "gone"}, headers=owner.headers)).json()["id"]
    for list_id, tag, n in ((kept, "k", 5), (gone, "g", 3)):
        added = await api.post(
            f"/lists/{list_id}/items",
            json={"items": creators(tag + uuid.uuid4().hex[:6], n)},
            headers=owner.headers,
        )
        assert added.status_code == 200, added.text
    items = (await api.get(f"/lists/{kept}/items", headers=owner.headers)).json()["items"]
    changed = await api.patch(
        f"/lists/{kept}/items",
        json={"items": [{"id": items[0]["id"], "bucket": "booked"}]},
        headers=owner.headers,
    )
    assert changed.status_code == 200, changed.text
    removed = await api.request(
        "DELETE", f"/lists/{kept}/items", json={"item_ids": [items[1]["id"]]}, headers=owner.headers
    )
    assert removed.status_code == 200, removed.text
    got = await stats(committed, uid)
    assert (got["lists"], got["backlog"], got["booked"]) == (2, 3 + 3, 1)
    for archived, expected_backlog in ((True, 3), (False, 6), (True, 3)):
        response = await api.patch(
            f"/lists/{gone}", json={"is_archived": archived}, headers=owner.headers
        )
        assert response.status_code == 200, response.text
        assert (await stats(committed, uid))["backlog"] == expected_backlog
    await api.patch(f"/lists/{gone}", json={"is_archived": False}, headers=owner.headers)
    # Deleting a list: its items go by cascade and leave the pipeline with it.
    assert (await api.delete(f"/lists/{gone}", headers=owner.headers)).status_code == 204
    got = await stats(committed, uid)
    assert (got["lists"], got["backlog"], got["booked"]) == (1, 3, 1)
    assert await drift(committed) == 0

    # The user purge (lists deleted in bulk, campaigns marked in bulk), then the user itself.
    async with AsyncSession(committed) as session:
        await CampaignRepository(session).purge_user(uid)
        await session.commit()
    got = await stats(committed, uid)
    assert (got["campaigns"], got["lists"], got["backlog"], got["booked"]) == (0, 0, 0, 0)
    assert await drift(committed) == 0
    async with committed.begin() as conn:
        await conn.execute(sa.delete(User).where(User.id == uid))
    assert await stats(committed, uid) == {}
    assert (await stats(committed, other.user.id))["active"] == 1
    assert await drift(committed) == 0


async def test_concurrent_creates_deletes_and_item_writes_keep_counters_exact(
    api, billing, make_owner, committed
):
    owner = await make_owner()
    created = await asyncio.gather(
        *(api.post("/campaigns", json={"name": f"c{i}"}, headers=owner.headers) for i in range(16))
    )
    assert [r.status_code for r in created] == [201] * 16, [r.text for r in created]
    ids = [r.json()["id"] for r in created]
    lists = [
        (await api.post("/lists", json={"name": f"l{i}"}, headers=owner.headers)).json()["id"]
        for i in range(3)
    ]
    # Deletes, new campaigns, status changes and item adds to three lists, all at once.
    tag = uuid.uuid4().hex[:8]
    results = await asyncio.gather(
        *(api.delete(f"/campaigns/{i}", headers=owner.headers) for i in ids[:8]),
        *(api.patch(f"/campaigns/{i}", json={"status": "active"}, headers=owner.headers)
          for i in ids[8:12]),
        *(api.post("/campaigns", json={"name": f"n{i}"}, headers=owner.headers)
          for i in range(8)),
        *(api.post(f"/lists/{lists[i % 3]}/items",
                   json={"items": creators(f"{tag}{i}-", 4, "shortlist")}, headers=owner.headers)
          for i in range(9)),
    )  # fmt: skip
    assert all(r.status_code < 300 for r in results), [r.text for r in results]
    live = sa.select(sa.func.count()).where(
        Campaign.user_id == owner.user.id, Campaign.deleted_at.is_(None)
    )
    got = await stats(committed, owner.user.id)
    assert got["campaigns"] == await scalar(committed, live) == 16
    assert (got["draft"], got["active"]) == (12, 4)
    assert (got["lists"], got["shortlist"]) == (3, 36)
    assert await drift(committed) == 0
    listing = (await api.get("/campaigns", headers=owner.headers)).json()
    assert listing["total"] == 16
    dashboard = (await api.get("/dashboard", headers=owner.headers)).json()
    assert dashboard["campaigns"]["total"] == 16 and dashboard["pipeline"]["total"] == 36


async def test_campaign_page_total_is_the_counter_per_status(api, make_owner, committed):
    owner = await make_owner()
    async with AsyncSession(committed, expire_on_commit=False) as session:
        for i in range(7):
            await make_campaign(session, owner.user, status="active" if i % 3 else "draft")
        await make_list(session, owner.user)
        await session.commit()
    for query, total in (("", 7), ("&status=draft", 3), ("&status=active", 4)):
        body = (await api.get(f"/campaigns?page_size=2{query}", headers=owner.headers)).json()
        assert body["total"] == total and len(body["items"]) == 2, (query, body)
    past_end = (await api.get("/campaigns?page=9", headers=owner.headers)).json()
    assert (past_end["total"], past_end["items"]) == (7, [])
    # A user who never owned anything has no counters row: zeros, not an error.
    newcomer = await make_owner()
    body = (await api.get("/campaigns", headers=newcomer.headers)).json()
    assert (body["total"], body["items"]) == (0, [])
    dashboard = (await api.get("/dashboard", headers=newcomer.headers)).json()
    assert dashboard["campaigns"]["total"] == 0 and dashboard["lists"] == 0


async def test_a_list_deleted_with_its_user_does_not_resurrect_counters(make_owner, committed):
    owner = await make_owner()
    async with AsyncSession(committed, expire_on_commit=False) as session:
        await make_list(session, owner.user)
        await make_campaign(session, owner.user)
        await session.commit()
    async with committed.begin() as conn:
        await conn.execute(sa.delete(User).where(User.id == owner.user.id))
    remaining = sa.select(sa.func.count()).select_from(CampaignUserStats)
    assert await scalar(committed, remaining) == 0
    assert await scalar(committed, sa.select(sa.func.count()).select_from(CreatorList)) == 0
