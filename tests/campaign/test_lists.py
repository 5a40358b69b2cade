"""Creator lists: CRUD, bulk add with dedupe (one request and concurrent requests), item changes
and removals with stats kept in the same transaction."""

import asyncio
import uuid

import sqlalchemy as sa

from shared.models import CreatorList, CreatorProfile, ListItem

from .conftest import scalar


def creator(n: int, *, platform: str = "tiktok", followers: int = 100, **extra) -> dict:
    return {
        "platform": platform,
        "external_id": f"ext{n}",
        "handle": f"handle{n}",
        "followers": followers,
        **extra,
    }


async def new_list(api, owner, name: str = "Shortlist") -> str:
    response = await api.post("/lists", json={"name": name}, headers=owner.headers)
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def recount(engine, list_id: str) -> tuple[int, int]:
    """The stats as they should be, counted from scratch."""
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                sa.select(
                    sa.func.count(), sa.func.coalesce(sa.func.sum(CreatorProfile.followers), 0)
                )
                .select_from(ListItem)
                .join(CreatorProfile, CreatorProfile.id == ListItem.creator_id)
                .where(ListItem.list_id == uuid.UUID(list_id))
            )
        ).one()
    return row[0], int(row[1])


async def stats(api, owner, list_id: str) -> tuple[int, int]:
    body = (await api.get(f"/lists/{list_id}", headers=owner.headers)).json()
    return body["creator_count"], body["follower_sum"]


async def test_list_crud(api, make_owner):
    owner = await make_owner()
    created = await api.post(
        "/lists",
        json={"name": "Fitness", "type": "research", "tags": ["gym"], "settings": {"a": 1}},
        headers=owner.headers,
    )
    assert created.status_code == 201
    body = created.json()
    assert (body["type"], body["privacy"], body["tags"], body["creator_count"]) == (
        "research",
        "private",
        ["gym"],
        0,
    )
    list_id = body["id"]
    await new_list(api, owner, "Second")
    patched = await api.patch(
        f"/lists/{list_id}", json={"name": "Fit", "is_archived": True}, headers=owner.headers
    )
    assert (patched.json()["name"], patched.json()["is_archived"]) == ("Fit", True)
    page = (await api.get("/lists?page_size=1", headers=owner.headers)).json()
    assert (page["total"], page["page_size"], page["items"][0]["name"]) == (2, 1, "Fit")
    live = (await api.get("/lists?archived=false", headers=owner.headers)).json()
    assert [x["name"] for x in live["items"]] == ["Second"]
    detail = (await api.get(f"/lists/{list_id}", headers=owner.headers)).json()
    assert detail["buckets"]["backlog"] == 0 and detail["name"] == "Fit"
    for name in ("", "a\x00b"):
        bad = await api.post("/lists", json={"name": name}, headers=owner.headers)
        assert (bad.status_code, bad.json()["code"]) == (422, "validation_error")
    assert (await api.delete(f"/lists/{list_id}", headers=owner.headers)).status_code == 204
    assert (await api.get(f"/lists/{list_id}", headers=owner.headers)).status_code == 404


async def test_bulk_add_dedupes_within_the_request_and_against_the_list(api, make_owner, committed):
    owner = await make_owner()
    list_id = await new_list(api, owner)
    url = f"/lists/{list_id}/items"
    first = [creator(1), creator(2, followers=50), creator(1), creator(3, platform="youtube")]
    # Platform case from providers ("TikTok") is the same creator as "tiktok".
    first.append(creator(2, platform="TikTok"))
    added = await api.post(url, json={"items": first}, headers=owner.headers)
    assert added.json() == {"added": 3, "skipped": 2, "attempted": 5}
    second = [creator(2), creator(4, bucket="shortlist", pinned=True, notes="call")]
    again = await api.post(url, json={"items": second}, headers=owner.headers)
    assert again.json() == {"added": 1, "skipped": 1, "attempted": 2}

    items = (await api.get(url, headers=owner.headers)).json()
    assert [(i["external_id"], i["position"]) for i in items["items"]] == [
        ("ext1", 0),
        ("ext2", 1),
        ("ext3", 2),
        ("ext4", 3),
    ]
    assert items["items"][3]["bucket"] == "shortlist" and items["items"][3]["pinned"]
    assert await stats(api, owner, list_id) == (4, 350) == await recount(committed, list_id)
    # One profile per (platform, external id), shared by every list that holds the creator.
    other = await new_list(api, owner, "Other")
    await api.post(f"/lists/{other}/items", json={"items": [creator(1)]}, headers=owner.headers)
    profiles = sa.select(sa.func.count()).select_from(CreatorProfile)
    assert await scalar(committed, profiles) == 4


async def test_concurrent_adds_of_overlapping_creators_dedupe_and_keep_stats_exact(
    api, make_owner, committed
):
    owner = await make_owner()
    list_id = await new_list(api, owner)
    # Ten requests, each 50 creators, overlapping heavily: 0..49, 10..59, …, 90..139.
    batches = [[creator(n, followers=n) for n in range(k * 10, k * 10 + 50)] for k in range(10)]
    responses = await asyncio.gather(
        *(
            api.post(f"/lists/{list_id}/items", json={"items": b}, headers=owner.headers)
            for b in batches
        )
    )
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
    assert sum(r.json()["added"] for r in responses) == 140
    assert sum(r.json()["skipped"] for r in responses) == 500 - 140
    expected = (140, sum(range(140)))
    assert await stats(api, owner, list_id) == expected == await recount(committed, list_id)
    async with committed.connect() as conn:
        positions = sorted(
            (
                await conn.execute(
                    sa.select(ListItem.position).where(ListItem.list_id == uuid.UUID(list_id))
                )
            ).scalars()
        )
    assert positions == list(range(140))  # appended without gaps or repeats


async def test_an_add_of_creators_all_listed_writes_nothing(api, make_owner, committed):
    """Adding creators the list holds already (a retried request, a second click) answers
    them as skipped without touching the list: its row is not rewritten (same version, same
    updated_at), so the lists page keeps its order; concurrent repeats take no lock."""
    owner = await make_owner()
    older, newer = await new_list(api, owner, "Older"), await new_list(api, owner, "Newer")
    url = f"/lists/{older}/items"
    batch = [creator(n, followers=n) for n in range(5)]
    assert (await api.post(url, json={"items": batch}, headers=owner.headers)).json()["added"] == 5
    await api.post(f"/lists/{newer}/items", json={"items": [creator(9)]}, headers=owner.headers)
    version = sa.text("SELECT xmin::text, updated_at FROM creator_lists WHERE id = :id")

    async def row() -> tuple:
        async with committed.connect() as conn:
            return tuple((await conn.execute(version, {"id": older})).one())

    before = await row()
    repeats = await asyncio.gather(
        *(api.post(url, json={"items": batch[k:]}, headers=owner.headers) for k in range(5))
    )
    assert [r.json() for r in repeats] == [
        {"added": 0, "skipped": 5 - k, "attempted": 5 - k} for k in range(5)
    ]
    assert await row() == before
    # No lock either: a repeat answers while another transaction holds the list's row lock
    # (an add that took the lock would wait for that transaction; the deadline catches it).
    async with committed.connect() as holder, holder.begin():
        lock = "SELECT 1 FROM creator_lists WHERE id = :id FOR UPDATE"
        await holder.execute(sa.text(lock), {"id": older})
        repeat = api.post(url, json={"items": batch}, headers=owner.headers)
        assert (await asyncio.wait_for(repeat, 10)).json()["added"] == 0
    page = (await api.get("/lists", headers=owner.headers)).json()
    assert [x["name"] for x in page["items"]] == ["Newer", "Older"]
    # One new creator among listed ones is an ordinary add: the list moves, stats exact.
    mixed = await api.post(url, json={"items": [*batch, creator(5, followers=5)]},
                           headers=owner.headers)  # fmt: skip
    assert mixed.json() == {"added": 1, "skipped": 5, "attempted": 6}
    assert await row() != before
    assert await stats(api, owner, older) == (6, 15) == await recount(committed, older)
    # Another user's list is still a 404, whether or not its creators are listed.
    stranger = await make_owner()
    refused = await api.post(url, json={"items": batch}, headers=stranger.headers)
    assert (refused.status_code, refused.json()["code"]) == (404, "list_not_found")


async def test_bulk_add_is_bounded_and_validated(api, make_owner):
    owner = await make_owner()
    list_id = await new_list(api, owner)
    url = f"/lists/{list_id}/items"
    too_many = [creator(n) for n in range(501)]
    response = await api.post(url, json={"items": too_many}, headers=owner.headers)
    assert (response.status_code, response.json()["code"]) == (422, "validation_error")
    for bad in (
        creator(1, platform="myspace"),
        {**creator(1), "external_id": "   "},
        creator(1, followers=-1),
        creator(1, bucket="nowhere"),
        # What Postgres cannot store is a 422, not a 500 — inside free-form JSON too.
        creator(1, metadata={"bio": "nul\x00inside"}),
        creator(1, metadata={"views": [2**70]}),
        creator(1, followers=2**63),
    ):
        response = await api.post(url, json={"items": [bad]}, headers=owner.headers)
        assert response.status_code == 422, bad
    deep = await api.get(f"/lists/{list_id}/items?page={10**19}", headers=owner.headers)
    assert (deep.status_code, deep.json()["code"]) == (422, "validation_error")
    exactly = [creator(n) for n in range(500)]
    response = await api.post(url, json={"items": exactly}, headers=owner.headers)
    assert response.json()["added"] == 500


async def test_items_can_be_changed_and_removed_with_stats_in_step(api, make_owner, committed):
    owner = await make_owner()
    list_id = await new_list(api, owner)
    url = f"/lists/{list_id}/items"
    await api.post(
        url,
        json={"items": [creator(n, followers=10 * n, notes="n") for n in range(1, 5)]},
        headers=owner.headers,
    )
    ids = [i["id"] for i in (await api.get(url, headers=owner.headers)).json()["items"]]
    unknown = str(uuid.uuid4())
    changed = await api.patch(
        url,
        json={
            "items": [
                {"id": ids[0], "bucket": "contacted", "pinned": True},
                {"id": ids[1], "notes": None, "position": 9},
                {"id": unknown, "bucket": "booked"},
            ]
        },
        headers=owner.headers,
    )
    assert changed.json() == {"updated": 2, "missing": [unknown]}
    items = {i["id"]: i for i in (await api.get(url, headers=owner.headers)).json()["items"]}
    assert (items[ids[0]]["bucket"], items[ids[0]]["pinned"], items[ids[0]]["notes"]) == (
        "contacted",
        True,
        "n",
    )
    assert (items[ids[1]]["notes"], items[ids[1]]["position"]) == (None, 9)
    for bad in ({"id": ids[0], "bucket": None}, {"id": ids[0], "position": 2**31}):
        refused = await api.patch(url, json={"items": [bad]}, headers=owner.headers)
        assert refused.status_code == 422, bad
    detail = (await api.get(f"/lists/{list_id}", headers=owner.headers)).json()
    assert detail["buckets"]["contacted"] == 1 and detail["buckets"]["backlog"] == 3

    removed = await api.request(
        "DELETE", url, json={"item_ids": [ids[0], ids[2], unknown]}, headers=owner.headers
    )
    assert removed.json() == {"removed": 2, "missing": [unknown]}
    assert await stats(api, owner, list_id) == (2, 20 + 40) == await recount(committed, list_id)
    # Re-adding a removed creator works and appends it.
    readd = await api.post(url, json={"items": [creator(1, followers=10)]}, headers=owner.headers)
    assert readd.json()["added"] == 1
    assert await stats(api, owner, list_id) == (3, 70) == await recount(committed, list_id)


async def test_deleting_a_list_removes_its_items(api, make_owner, committed):
    owner = await make_owner()
    list_id = await new_list(api, owner)
    await api.post(
        f"/lists/{list_id}/items", json={"items": [creator(1), creator(2)]}, headers=owner.headers
    )
    assert (await api.delete(f"/lists/{list_id}", headers=owner.headers)).status_code == 204
    assert await scalar(committed, sa.select(sa.func.count()).select_from(ListItem)) == 0
    assert await scalar(committed, sa.select(sa.func.count()).select_from(CreatorList)) == 0
