"""``creator_list_tags``: each list's tags as rows, kept by triggers on ``creator_lists``, and
``GET /lists?tag=`` / ``?any_tag=`` answered from them.

Upkeep: after every write path — the API (create, re-tag, rename, archive, item adds and
removals, delete), the user purge and a user's deletion (cascades), raw SQL (a multi-row
INSERT, COPY, bulk UPDATEs, a list moved to another user) and concurrent writers on the same
lists — the entries are exactly a recount computed in SQL from ``creator_lists`` (one row per
list and distinct string tag of 1 to 100 characters, with the list's user, ``updated_at`` and
``is_archived``), with no duplicates.

Listing: every combination of ``tag``, ``any_tag`` and ``archived`` pages through exactly the
matching lists in ``updated_at DESC, id DESC`` order (a list holding several of the asked tags
once), a changed list moves to the front, and a filtered total counts to 1,000 then says so
(``X-Total-Capped: true``) while unfiltered totals stay exact. Tags are 1 to 100 characters.
"""

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import psycopg
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.campaign.repository import CampaignRepository
from shared.db import libpq_url
from shared.models import User
from shared.queries.pagination import COUNT_CAP

T0 = datetime(2020, 1, 1, tzinfo=UTC)  # before any write the API makes

# What the entries must be, recounted from the lists (non-array tags hold no tag).
RECOUNT = sa.text("""
SELECT DISTINCT l.id, l.user_id, e.value #>> '{}', l.updated_at, l.is_archived
FROM creator_lists l CROSS JOIN LATERAL jsonb_array_elements(
  CASE WHEN jsonb_typeof(l.tags) = 'array' THEN l.tags ELSE '[]'::jsonb END) e
WHERE jsonb_typeof(e.value) = 'string' AND char_length(e.value #>> '{}') BETWEEN 1 AND 100
""")
ENTRIES = sa.text(
    "SELECT list_id, user_id, tag, list_updated_at, list_archived FROM creator_list_tags"
)

# Lists with chosen ids, tags, archived flags and updated_at, in one multi-row statement.
INSERT_LISTS = sa.text("""
INSERT INTO creator_lists (id, user_id, name, tags, is_archived, updated_at)
SELECT r.id, r.user_id, r.name, r.tags, r.is_archived, r.updated_at
FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(
  id uuid, user_id uuid, name text, tags jsonb, is_archived boolean, updated_at timestamptz)
""")


class Entry(NamedTuple):
    list_id: uuid.UUID
    user_id: uuid.UUID
    tag: str
    updated_at: datetime
    archived: bool


class Spec(NamedTuple):
    """A list to insert: its id, name, tags, archived flag and updated_at."""

    id: uuid.UUID
    name: str
    tags: list[Any]
    archived: bool
    updated_at: datetime


# helpers -----------------------------------------------------------------------------------


async def in_step(engine) -> set[Entry]:
    """The entries, once checked equal to the recount (and free of duplicates)."""
    async with engine.connect() as conn:
        expected = sorted(Entry(*row) for row in await conn.execute(RECOUNT))
        entries = sorted(Entry(*row) for row in await conn.execute(ENTRIES))
    assert entries == expected
    return set(entries)


def of_list(entries: set[Entry], list_id: str | uuid.UUID) -> set[Entry]:
    return {e for e in entries if e.list_id == uuid.UUID(str(list_id))}


def expected_entries(body: dict, user_id: uuid.UUID) -> set[Entry]:
    """The entries a list shown by the API (``ListPublic``) should have."""
    when = datetime.fromisoformat(body["updated_at"])
    return {
        Entry(uuid.UUID(body["id"]), user_id, tag, when, body["is_archived"])
        for tag in body["tags"]
    }


def creators(prefix: str, n: int) -> list[dict]:
    return [
        {"platform": "tiktok", "external_id": f"{prefix}{i}", "handle": f"h{prefix}{i}"}
        for i in range(n)
    ]


async def create(api, owner, name: str, tags: list[str]) -> dict:
    response = await api.post("/lists", json={"name": name, "tags": tags}, headers=owner.headers)
    assert response.status_code == 201, response.text
    return response.json()


async def patch(api, owner, list_id: str, **fields) -> dict:
    response = await api.patch(f"/lists/{list_id}", json=fields, headers=owner.headers)
    assert response.status_code == 200, response.text
    return response.json()


async def shown(api, owner, list_id: str) -> dict:
    response = await api.get(f"/lists/{list_id}", headers=owner.headers)
    assert response.status_code == 200, response.text
    return response.json()


async def insert_lists(engine, user_id: uuid.UUID, specs: list[Spec]) -> None:
    rows = [
        {"id": str(s.id), "user_id": str(user_id), "name": s.name, "tags": s.tags,
         "is_archived": s.archived, "updated_at": s.updated_at.isoformat()}
        for s in specs
    ]  # fmt: skip
    async with engine.begin() as conn:
        await conn.execute(INSERT_LISTS, {"rows": json.dumps(rows)})


async def get_page(api, owner, query: str) -> tuple[list[str], int, bool]:
    """One page of ``GET /lists?{query}``: its ids, its total and whether the total is capped."""
    response = await api.get(f"/lists?{query}", headers=owner.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    capped = response.headers.get("x-total-capped")
    assert capped in (None, "true"), capped
    return [item["id"] for item in body["items"]], body["total"], capped == "true"


async def walk(api, owner, query: str, page_size: int) -> tuple[list[str], set[int]]:
    """Every page of a listing, and one past its end: the ids in order, the totals shown."""
    ids: list[str] = []
    totals: set[int] = set()
    page = 1
    while True:
        got, total, capped = await get_page(
            api, owner, f"{query}&page={page}&page_size={page_size}"
        )
        assert not capped, query
        assert len(got) <= page_size
        totals.add(total)
        if not got:
            return ids, totals
        ids += got
        page += 1


# upkeep through the API ---------------------------------------------------------------------


async def test_entries_follow_creating_retagging_renaming_and_archiving(api, make_owner, committed):
    owner = await make_owner()
    uid = owner.user.id
    a = await create(api, owner, "A", ["gym", "yoga", "gym"])
    b = await create(api, owner, "B", ["gym"])
    c = await create(api, owner, "C", [])
    entries = await in_step(committed)
    # A duplicate tag in the array is one entry; a list without tags has none.
    assert {e.tag for e in of_list(entries, a["id"])} == {"gym", "yoga"}
    assert of_list(entries, a["id"]) == expected_entries(a, uid)
    assert of_list(entries, b["id"]) == expected_entries(b, uid)
    assert of_list(entries, c["id"]) == set()

    # New tags rebuild the list's entries.
    a = await patch(api, owner, a["id"], tags=["yoga", "run", "run"])
    entries = await in_step(committed)
    assert {e.tag for e in of_list(entries, a["id"])} == {"yoga", "run"}
    assert of_list(entries, a["id"]) == expected_entries(a, uid)

    # A rename changes no tag but moves updated_at: the entries follow.
    before = datetime.fromisoformat(a["updated_at"])
    a = await patch(api, owner, a["id"], name="A renamed")
    assert datetime.fromisoformat(a["updated_at"]) > before
    entries = await in_step(committed)
    assert of_list(entries, a["id"]) == expected_entries(a, uid)

    # Archive and back.
    for archived in (True, False):
        a = await patch(api, owner, a["id"], is_archived=archived)
        entries = await in_step(committed)
        assert {e.archived for e in of_list(entries, a["id"])} == {archived}
        assert of_list(entries, a["id"]) == expected_entries(a, uid)

    # Tags removed: no entries; tags given to a list that had none: entries.
    b = await patch(api, owner, b["id"], tags=[])
    c = await patch(api, owner, c["id"], tags=["new", "gym"], is_archived=True)
    b = await patch(api, owner, b["id"], description="still untagged")
    entries = await in_step(committed)
    assert of_list(entries, b["id"]) == set()
    assert of_list(entries, c["id"]) == expected_entries(c, uid)
    assert {e.tag for e in of_list(entries, c["id"])} == {"new", "gym"}
    assert {e.list_id for e in entries} == {uuid.UUID(a["id"]), uuid.UUID(c["id"])}


async def test_entries_follow_item_adds_and_removals(api, make_owner, committed):
    """Item writes move the list's ``creator_count`` and so its ``updated_at``."""
    owner = await make_owner()
    uid = owner.user.id
    tagged = await create(api, owner, "Tagged", ["x", "y"])
    plain = await create(api, owner, "Plain", [])
    url = f"/lists/{tagged['id']}/items"
    prefix = uuid.uuid4().hex[:8]

    added = await api.post(url, json={"items": creators(prefix, 4)}, headers=owner.headers)
    assert added.json()["added"] == 4, added.text
    after_add = await shown(api, owner, tagged["id"])
    assert after_add["updated_at"] != tagged["updated_at"]
    entries = await in_step(committed)
    assert of_list(entries, tagged["id"]) == expected_entries(after_add, uid)

    items = (await api.get(url, headers=owner.headers)).json()["items"]
    changed = await api.patch(
        url, json={"items": [{"id": items[0]["id"], "bucket": "booked"}]}, headers=owner.headers
    )
    assert changed.status_code == 200, changed.text
    entries = await in_step(committed)
    assert of_list(entries, tagged["id"]) == expected_entries(
        await shown(api, owner, tagged["id"]), uid
    )

    removed = await api.request(
        "DELETE", url, json={"item_ids": [items[1]["id"]]}, headers=owner.headers
    )
    assert removed.json()["removed"] == 1, removed.text
    after_remove = await shown(api, owner, tagged["id"])
    assert after_remove["updated_at"] != after_add["updated_at"]
    entries = await in_step(committed)
    assert of_list(entries, tagged["id"]) == expected_entries(after_remove, uid)

    # Creators listed already: nothing is written, nothing moves.
    again = await api.post(url, json={"items": creators(prefix, 1)}, headers=owner.headers)
    assert again.json()["added"] == 0, again.text
    assert await in_step(committed) == entries

    # An untagged list's item writes leave no entries behind.
    plain_url = f"/lists/{plain['id']}/items"
    await api.post(plain_url, json={"items": creators(prefix + "p", 2)}, headers=owner.headers)
    entries = await in_step(committed)
    assert of_list(entries, plain["id"]) == set()
    assert of_list(entries, tagged["id"]) == expected_entries(after_remove, uid)


async def test_entries_go_with_the_list_and_with_its_user(api, make_owner, committed):
    kept, purged, deleted = await make_owner(), await make_owner(), await make_owner()
    stays = await create(api, kept, "stays", ["t", "u"])
    goes = await create(api, kept, "goes", ["t"])
    for owner in (purged, deleted):
        await create(api, owner, "one", ["t"])
        await create(api, owner, "two", ["t", "v"])
    assert len(await in_step(committed)) == 3 + 3 + 3

    # A list deleted through the API.
    assert (await api.delete(f"/lists/{goes['id']}", headers=kept.headers)).status_code == 204
    entries = await in_step(committed)
    assert of_list(entries, goes["id"]) == set()

    # The user purge deletes a user's lists in bulk.
    async with AsyncSession(committed) as session:
        await CampaignRepository(session).purge_user(purged.user.id)
        await session.commit()
    entries = await in_step(committed)
    assert {e.user_id for e in entries} == {kept.user.id, deleted.user.id}

    # Deleting the user cascades through creator_lists to the entries.
    async with committed.begin() as conn:
        await conn.execute(sa.delete(User).where(User.id == deleted.user.id))
    entries = await in_step(committed)
    assert entries == expected_entries(stays, kept.user.id)


# upkeep through raw SQL ---------------------------------------------------------------------


async def test_entries_follow_raw_sql_writes(make_owner, committed, database_url):
    owner, other = await make_owner(), await make_owner()
    uid = owner.user.id
    lengths = ["", " ", "x" * 100, "x" * 101, "é" * 100, "é" * 101]
    specs = {
        name: Spec(uuid.uuid4(), name, tags, False, T0)
        for name, tags in (
            ("dups", ["a", "b", "a"]),
            ("mixed", [1, "x", None, True, {"k": "v"}, ["y"], "x"]),
            ("lengths", lengths),
            ("scalar", "solo"),
            ("object", {"a": "b"}),
            ("empty", []),
        )
    }
    await insert_lists(committed, uid, list(specs.values()))  # one multi-row INSERT
    ids = {name: spec.id for name, spec in specs.items()}
    entries = await in_step(committed)
    # Strings of 1 to 100 characters (not bytes) only; nothing of a non-array value.
    assert {(e.list_id, e.tag) for e in entries} == {
        (ids["dups"], "a"),
        (ids["dups"], "b"),
        (ids["mixed"], "x"),
        (ids["lengths"], " "),
        (ids["lengths"], "x" * 100),
        (ids["lengths"], "é" * 100),
    }
    assert {(e.user_id, e.updated_at, e.archived) for e in entries} == {(uid, T0, False)}

    async def run(*statements: tuple[str, dict]) -> set[Entry]:
        async with committed.begin() as conn:
            for sql, params in statements:
                await conn.execute(sa.text(sql), params)
        return await in_step(committed)

    # A list moved to another user: its entries move with it.
    move = "UPDATE creator_lists SET user_id = :o WHERE id = :id"
    entries = await run((move, {"o": other.user.id, "id": ids["dups"]}))
    assert {e.user_id for e in of_list(entries, ids["dups"])} == {other.user.id}
    # A bulk archive, a rename (updated_at moves), tags appended, dropped, given, changed along
    # with the user; then, in one transaction, an insert and an update of the new list.
    archive = "UPDATE creator_lists SET is_archived = true WHERE user_id = :u"
    entries = await run((archive, {"u": uid}))
    assert {e.archived for e in entries if e.user_id == uid} == {True}
    entries = await run(
        ("UPDATE creator_lists SET description = 'd' WHERE id = :id", {"id": ids["mixed"]})
    )
    assert {e.updated_at for e in of_list(entries, ids["mixed"])} != {T0}
    entries = await run(
        ("UPDATE creator_lists SET tags = tags || '[\"z\", \"x\"]' WHERE id = :id", {"id": ids["mixed"]}),
        ("UPDATE creator_lists SET tags = '[\"\"]' WHERE id = :id", {"id": ids["lengths"]}),
        ("UPDATE creator_lists SET tags = '[\"q\"]' WHERE id = :id", {"id": ids["scalar"]}),
        ("UPDATE creator_lists SET tags = '[\"o\"]', user_id = :o WHERE id = :id",
         {"o": other.user.id, "id": ids["object"]}),
    )  # fmt: skip
    assert {e.tag for e in of_list(entries, ids["mixed"])} == {"x", "z"}
    assert of_list(entries, ids["lengths"]) == set()
    assert {e.tag for e in of_list(entries, ids["scalar"])} == {"q"}
    assert {(e.tag, e.user_id) for e in of_list(entries, ids["object"])} == {("o", other.user.id)}
    fresh = uuid.uuid4()
    entries = await run(
        ("INSERT INTO creator_lists (id, user_id, name, tags) VALUES (:id, :u, 'n', '[\"n\"]')",
         {"id": fresh, "u": uid}),
        ("UPDATE creator_lists SET is_archived = true WHERE id = :id", {"id": fresh}),
    )  # fmt: skip
    assert {(e.tag, e.archived) for e in of_list(entries, fresh)} == {("n", True)}

    # COPY: the statement-level trigger sees its rows too.
    async with await psycopg.AsyncConnection.connect(libpq_url(database_url)) as conn:
        sql = "COPY creator_lists (user_id, name, tags) FROM STDIN"
        async with conn.cursor() as cursor, cursor.copy(sql) as copy:
            await copy.write_row((uid, "copied 1", '["c", "d", "c"]'))
            await copy.write_row((uid, "copied 2", '[2, "d"]'))
        await conn.commit()
    entries = await in_step(committed)
    assert sorted(e.tag for e in entries if e.tag in ("c", "d")) == ["c", "d", "d"]


# upkeep under concurrent writers ------------------------------------------------------------


async def test_concurrent_item_writes_and_retags_of_the_same_lists_keep_entries_exact(
    api, make_owner, committed
):
    """Item adds (which move the list's updated_at), re-tags, archive toggles and renames of
    the same three lists at once, through the API and on raw connections, plus new lists."""
    owner = await make_owner()
    lists = [(await create(api, owner, f"l{i}", ["base", f"l{i}"]))["id"] for i in range(3)]
    prefix = uuid.uuid4().hex[:8]

    async def raw(sql: str, **params) -> None:
        async with committed.begin() as conn:  # its own connection and transaction
            await conn.execute(sa.text(sql), params)

    retag = "UPDATE creator_lists SET tags = CAST(:tags AS jsonb) WHERE id = :id"
    rename = "UPDATE creator_lists SET name = :name WHERE id = :id"
    for round_ in range(2):
        through_api = [
            *(api.post(f"/lists/{lists[k % 3]}/items",
                       json={"items": creators(f"{prefix}-{round_}-{k}-", 5)},
                       headers=owner.headers)
              for k in range(12)),
            *(api.patch(f"/lists/{lists[k % 3]}", json={"tags": [f"t{k}", "shared", f"t{k}"]},
                        headers=owner.headers)
              for k in range(9)),
            *(api.patch(f"/lists/{lists[k]}", json={"is_archived": (k + round_) % 2 == 0},
                        headers=owner.headers)
              for k in range(3)),
            *(api.post("/lists", json={"name": f"new{k}", "tags": ["shared", f"n{k}"]},
                       headers=owner.headers)
              for k in range(3)),
        ]  # fmt: skip
        on_connections = [
            *(raw(retag, tags=json.dumps([f"r{k}", "raw", f"r{k}"]), id=lists[k % 3])
              for k in range(4)),
            *(raw(rename, name=f"renamed{k}", id=lists[k % 3]) for k in range(3)),
        ]  # fmt: skip
        results = await asyncio.gather(*through_api, *on_connections)
        responses = results[: len(through_api)]
        assert all(r.status_code < 300 for r in responses), [r.text for r in responses]

        entries = await in_step(committed)
        counts = 0
        for list_id in lists:
            body = await shown(api, owner, list_id)
            assert of_list(entries, list_id) == expected_entries(body, owner.user.id)
            counts += body["creator_count"]
        assert counts == (round_ + 1) * 12 * 5  # every add went in
        created = {uuid.UUID(r.json()["id"]) for r in responses if r.status_code == 201}
        assert len(created) == 3 and created <= {e.list_id for e in entries}


# listing ----------------------------------------------------------------------------------


def newest_first(specs: list[Spec]) -> list[str]:
    return [str(s.id) for s in sorted(specs, key=lambda s: (s.updated_at, s.id), reverse=True)]


def matching(
    specs: list[Spec], tags: list[str], any_tags: list[str], archived: bool | None
) -> list[str]:
    """The ids ``GET /lists`` should show for these filters, in listing order."""
    return newest_first(
        [
            s
            for s in specs
            if all(t in s.tags for t in tags)
            and (not any_tags or any(t in s.tags for t in any_tags))
            and (archived is None or s.archived == archived)
        ]
    )


LISTING_SPECS = (  # name, tags, archived, minutes after T0
    ("a1", ["a"], False, 1),
    ("ab2", ["a", "b"], False, 2),
    ("b3", ["b"], False, 3),
    ("ac4", ["a", "c"], True, 4),
    ("a5", ["a"], False, 5),
    ("ab5", ["a", "b"], False, 5),  # three lists at the same updated_at: the id breaks ties
    ("abc5", ["a", "b", "c"], True, 5),
    ("bc6", ["b", "c"], False, 6),
    ("abc7", ["c", "b", "a"], True, 7),
    ("none8", [], False, 8),
    ("d9", ["d"], False, 9),
    ("a10", ["a", "a"], False, 10),
    ("c11", ["c"], True, 11),
    ("ba12", ["b", "a"], False, 12),
    ("long13", ["a" * 101], False, 13),  # no tag a filter can ask for: no entry
)


async def test_filtered_listings_page_through_exactly_the_matches_newest_first(
    api, make_owner, committed
):
    owner, stranger = await make_owner(), await make_owner()
    specs = [
        Spec(uuid.uuid4(), name, tags, archived, T0 + timedelta(minutes=m))
        for name, tags, archived, m in LISTING_SPECS
    ]
    await insert_lists(committed, owner.user.id, specs)
    # Another user's lists with the same tags, newer than all of the owner's.
    theirs = [
        Spec(uuid.uuid4(), f"theirs{i}", ["a", "b", "c"], i % 2 == 0, T0 + timedelta(hours=i))
        for i in range(1, 6)
    ]
    await insert_lists(committed, stranger.user.id, theirs)
    await in_step(committed)

    cases = [  # (tags, any_tags, archived)
        (["a"], [], None),
        (["a", "b"], [], None),
        (["b", "a"], [], None),
        (["a", "a"], [], None),
        ([], ["a", "b"], None),
        ([], ["c", "b", "zzz"], None),
        ([], ["a", "a"], None),
        (["a"], ["b", "c"], None),
        (["b"], ["a", "zzz"], None),
        (["a"], [], True),
        (["a"], [], False),
        (["a", "c"], [], False),
        ([], ["b", "c"], False),
        ([], ["b", "c"], True),
        (["a"], ["c"], True),
        (["zzz"], [], None),
        ([], ["zzz", "yyy"], None),
        (["a", "zzz"], [], None),
    ]
    for tags, any_tags, archived in cases:
        expected = matching(specs, tags, any_tags, archived)
        query = "&".join(
            [f"tag={t}" for t in tags]
            + [f"any_tag={t}" for t in any_tags]
            + ([] if archived is None else [f"archived={str(archived).lower()}"])
        )
        for page_size in (1, 2, 3, 100):
            ids, totals = await walk(api, owner, query, page_size)
            case = (tags, any_tags, archived, page_size)
            assert ids == expected, case
            assert totals == {len(expected)}, case
    # The stranger sees only theirs.
    ids, totals = await walk(api, stranger, "tag=a&any_tag=b", 2)
    assert ids == newest_first(theirs) and totals == {5}


async def test_a_changed_list_moves_to_the_front_of_its_tag_listings(api, make_owner, committed):
    owner = await make_owner()
    specs = [
        Spec(uuid.uuid4(), f"l{i}", ["a", "b"] if i % 2 else ["a"], False,
             T0 + timedelta(minutes=i))
        for i in range(6)
    ]  # fmt: skip
    await insert_lists(committed, owner.user.id, specs)
    order = newest_first(specs)  # l5, l4, …, l0

    async def listing(query: str) -> list[str]:
        ids, _ = await walk(api, owner, query, 2)
        return ids

    async def add(list_id: str) -> None:
        url = f"/lists/{list_id}/items"
        added = await api.post(url, json={"items": creators(list_id, 2)}, headers=owner.headers)
        assert added.json()["added"] == 2, added.text

    assert await listing("tag=a") == order
    moves = [
        (order[-1], lambda i: patch(api, owner, i, name="renamed")),
        (order[-2], add),
        (order[-3], lambda i: patch(api, owner, i, description="touched")),
    ]  # fmt: skip
    for list_id, change in moves:
        await change(list_id)
        order = [list_id] + [i for i in order if i != list_id]
        assert await listing("tag=a") == order
        assert await listing("any_tag=zzz&any_tag=a") == order
        assert await listing("tag=a&archived=false") == order
    in_b = {str(s.id) for s in specs if "b" in s.tags}
    assert await listing("tag=a&tag=b") == [i for i in order if i in in_b]
    assert await listing("any_tag=b&any_tag=a") == order

    # Archiving moves it too; the live listing loses it, the archived one has only it.
    archived = order[-1]
    await patch(api, owner, archived, is_archived=True)
    order = [archived] + [i for i in order if i != archived]
    assert await listing("tag=a") == order
    assert await listing("tag=a&archived=true") == [archived]
    assert await listing("any_tag=a&archived=false") == order[1:]
    await in_step(committed)


# capped totals ------------------------------------------------------------------------------


async def insert_tagged(engine, user_id: uuid.UUID, first: int, last: int) -> None:
    """Lists ``l{first}``..``l{last}`` tagged ``t`` (every even one also ``u``), ``l{g}``
    changed ``g`` minutes after T0, in one INSERT ... SELECT."""
    async with engine.begin() as conn:
        await conn.execute(
            sa.text(
                "INSERT INTO creator_lists (user_id, name, tags, updated_at)"
                " SELECT :u, 'l' || g,"
                ' CASE WHEN g % 2 = 0 THEN \'["t", "u"]\' ELSE \'["t"]\' END::jsonb,'
                " :t0 + g * interval '1 minute'"
                " FROM generate_series(CAST(:first AS int), CAST(:last AS int)) AS g"
            ),
            {"u": user_id, "t0": T0, "first": first, "last": last},
        )


async def names(api, owner, query: str) -> tuple[list[str], int, bool]:
    response = await api.get(f"/lists?{query}", headers=owner.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    capped = response.headers.get("x-total-capped")
    return [item["name"] for item in body["items"]], body["total"], capped == "true"


async def test_filtered_totals_stop_at_the_cap_unfiltered_ones_do_not(api, make_owner, committed):
    big, exact, small = await make_owner(), await make_owner(), await make_owner()
    await insert_tagged(committed, big.user.id, 1, COUNT_CAP + 5)
    await insert_tagged(committed, exact.user.id, 1, COUNT_CAP)
    await insert_tagged(committed, small.user.id, 1, COUNT_CAP - 1)
    await in_step(committed)

    newest = [f"l{g}" for g in range(COUNT_CAP + 5, 0, -1)]
    for query in ("tag=t", "any_tag=t&any_tag=u", "tag=t&archived=false", "any_tag=t"):
        got, total, capped = await names(api, big, f"{query}&page=2&page_size=3")
        assert (total, capped) == (COUNT_CAP, True), query
        assert got == newest[3:6], query
        # Past the end the total is still capped.
        got, total, capped = await names(api, big, f"{query}&page=400&page_size=3")
        assert (got, total, capped) == ([], COUNT_CAP, True), query
    # Fewer matches than the cap: exact.
    got, total, capped = await names(api, big, "tag=u&page_size=2")
    assert (got, total, capped) == (["l1004", "l1002"], (COUNT_CAP + 5) // 2, False)
    got, total, capped = await names(api, big, "tag=t&archived=true")
    assert (got, total, capped) == ([], 0, False)
    # Unfiltered and archived-only listings count exactly, with no header.
    for query in ("", "archived=false"):
        got, total, capped = await names(api, big, f"{query}&page_size=2")
        assert (got, total, capped) == (newest[:2], COUNT_CAP + 5, False), query

    for query in ("tag=t", "any_tag=t&any_tag=nope", "tag=t&archived=false"):
        _, total, capped = await names(api, exact, query)
        assert (total, capped) == (COUNT_CAP, False), query
        _, total, capped = await names(api, small, query)
        assert (total, capped) == (COUNT_CAP - 1, False), query
    # One more match than the cap: capped.
    await insert_tagged(committed, exact.user.id, COUNT_CAP + 1, COUNT_CAP + 1)
    got, total, capped = await names(api, exact, "tag=t&page_size=1")
    assert (got, total, capped) == ([f"l{COUNT_CAP + 1}"], COUNT_CAP, True)


# validation -------------------------------------------------------------------------------


async def test_tags_are_one_to_a_hundred_characters(api, make_owner, committed):
    owner = await make_owner()
    for bad in ([""], ["x" * 101], ["ok", ""], ["é" * 101]):
        refused = await api.post("/lists", json={"name": "n", "tags": bad}, headers=owner.headers)
        assert (refused.status_code, refused.json()["code"]) == (422, "validation_error"), bad
    longest = ["x" * 100, "é" * 100, " "]
    made = await create(api, owner, "n", longest)
    assert made["tags"] == longest
    for bad in ([""], ["x" * 101], ["fine", "y" * 101]):
        refused = await api.patch(f"/lists/{made['id']}", json={"tags": bad}, headers=owner.headers)
        assert (refused.status_code, refused.json()["code"]) == (422, "validation_error"), bad
    assert (await shown(api, owner, made["id"]))["tags"] == longest
    entries = await in_step(committed)
    assert entries == expected_entries(made, owner.user.id)


async def test_a_tag_holding_nul_is_refused_in_filters_and_bodies(api, make_owner):
    """Postgres text cannot hold NUL: the filter and the write both answer 422, never 500."""
    owner = await make_owner()
    made = await create(api, owner, "n", ["kept"])
    for params in ({"tag": "a\x00b"}, {"any_tag": ["ok", "\x00"]}):
        refused = await api.get("/lists", params=params, headers=owner.headers)
        assert (refused.status_code, refused.json()["code"]) == (422, "validation_error"), params
    refused = await api.patch(
        f"/lists/{made['id']}", json={"tags": ["a\x00"]}, headers=owner.headers
    )
    assert (refused.status_code, refused.json()["code"]) == (422, "validation_error")
    assert (await shown(api, owner, made["id"]))["tags"] == ["kept"]
