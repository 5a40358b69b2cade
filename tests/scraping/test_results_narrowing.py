"""``GET /jobs/{id}/results`` narrowed and sorted: filters, sorts, their combinations, the total of
the narrowed set, paging, bounds, ownership — each checked against a plain-Python oracle over the
same creators, stored through the workers' own store statement."""

import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.scraping.api import create_app as scraping_app
from services.scraping.repository import COUNT_CAP, JobRepository, results
from services.scraping.repository.text import indexable, runs
from shared.models import ScrapingJob
from shared.models.scraping import TEXT_BLOCK

from ..factories import make_campaign, make_job, make_user
from ..perf.test_read_routes import recorded

WORDS = ["yoga", "Vegan", "travel", "TECH", "dance", "100%_real"]


def creator(n: int, rng: random.Random) -> dict[str, Any]:
    email = rng.random() < 0.3
    return {
        "platform": "tiktok",
        "creator_key": f"c{n}",
        "external_id": f"id{n}",
        "username": f"c{n}",
        "display_name": f"{rng.choice(WORDS)} Person {n}",
        "bio": f"I love {rng.choice(WORDS)}" + (" mail me x@y.io" if email else ""),
        "followers": None if n % 11 == 0 else rng.choice([500, 1000, 5000, 20_000, 1_000_000]),
        "verified": rng.random() < 0.25,
        "emails": ["x@y.io"] if email else [],
        "source": "synthetic",
        "synthetic": True,
    }


def oracle(creators: list[dict[str, Any]], params: dict[str, Any]) -> list[str]:
    """The keys the narrowed, sorted set holds, computed without Postgres."""
    out = []
    for c in creators:
        f = c["followers"]
        if "min_followers" in params and (f is None or f < params["min_followers"]):
            continue
        if "max_followers" in params and (f is None or f > params["max_followers"]):
            continue
        if "verified" in params and c["verified"] != params["verified"]:
            continue
        if "has_email" in params and bool(c["emails"]) != params["has_email"]:
            continue
        if "q" in params:
            text = f"{c['username']} {c['display_name']} {c['bio']}".lower()
            if params["q"].lower() not in text:
                continue
        out.append(c)
    sort = params.get("sort", "found")
    if sort != "found":
        sign = -1 if sort == "followers_desc" else 1
        known = sorted(
            (c for c in out if c["followers"] is not None), key=lambda c: sign * c["followers"]
        )  # stable: ties keep discovery order
        out = known + [c for c in out if c["followers"] is None]
    return [c["creator_key"] for c in out]


@dataclass
class Stored:
    client: httpx.AsyncClient
    modes: Any
    job: ScrapingJob
    creators: list[dict[str, Any]]
    headers: dict[str, str]
    stranger: dict[str, str]

    async def get(self, **params: Any) -> httpx.Response:
        self.modes.seen.clear()
        return await self.client.get(
            f"/jobs/{self.job.id}/results", params=params, headers=self.headers
        )

    async def page_through(
        self, params: dict[str, Any], limit: int, cap: int = COUNT_CAP
    ) -> list[str]:
        """Every key of the narrowed set, following ``next_offset`` page by page; each page
        states the same total, the oracle's as counted up to ``cap`` (the count reads one
        past the cap it was built with; ``COUNT_CAP`` itself caps the stated figure)."""
        expected = oracle(self.creators, params)
        seen, offset = [], 0
        while offset is not None:
            response = await self.get(**params, offset=offset, limit=limit)
            body = response.json()
            assert body["total"] == min(len(expected), cap + 1, COUNT_CAP), params
            capped = response.headers.get("x-total-capped") == "true"
            assert capped == (len(expected) > COUNT_CAP), params
            seen += [c["creator_key"] for c in body["items"]]
            offset = body["next_offset"]
        return seen


@pytest.fixture
async def stored(service_settings, committed, signing_keys) -> AsyncIterator[Stored]:
    rng = random.Random(17)
    creators = [creator(n, rng) for n in range(300)]
    async with AsyncSession(committed, expire_on_commit=False) as session, session.begin():
        user, stranger = await make_user(session), await make_user(session)
        job = await make_job(session, await make_campaign(session, user), target_results=1000)
        repo = JobRepository(session)
        for chunk in (creators[:120], creators[120:121], creators[121:]):  # three store calls
            await repo.store_creators(
                job.id, job.platform, [(c["creator_key"], c) for c in chunk], 1000
            )
        await session.execute(
            sa.update(ScrapingJob).where(ScrapingJob.id == job.id).values(processed_results=300)
        )
    token = signing_keys.token
    async with recorded(scraping_app(service_settings)) as (client, modes):
        yield Stored(
            client, modes, job, creators,
            {"authorization": f"Bearer {token(user.user_id)}"},
            {"authorization": f"Bearer {token(stranger.user_id)}"},
        )  # fmt: skip


CASES: list[dict[str, Any]] = [
    {"sort": "found"},
    {"sort": "followers_desc"},
    {"sort": "followers_asc"},
    {"min_followers": 5000},
    {"max_followers": 1000},
    {"min_followers": 1000, "max_followers": 20_000, "sort": "followers_desc"},
    {"verified": True},
    {"verified": False, "sort": "followers_asc"},
    {"has_email": True},
    {"has_email": False, "verified": True, "sort": "followers_desc"},
    {"q": "YOGA"},
    {"q": "vegan person"},  # spans display name words
    {"q": "c12"},  # a username substring: c12, c120…c129
    {"q": "100%_"},  # LIKE's wildcards are matched literally
    {"q": "%"},
    {"q": "nobody-has-this"},
    {"q": "tech", "has_email": True, "min_followers": 1000, "sort": "followers_asc"},
]


@pytest.mark.parametrize("params", CASES, ids=lambda p: ",".join(f"{k}={v}" for k, v in p.items()))
async def test_a_narrowed_page_matches_the_oracle_in_one_statement(stored, params):
    expected = oracle(stored.creators, params)
    response = await stored.get(**params, limit=40)
    assert response.status_code == 200, response.text
    # Caller, ownership, count and page at once; text the trigram index cannot narrow first
    # asks the job's size (refused on a job bigger than a search makes).
    assert len(stored.modes.seen) == (1 if indexable(params.get("q")) else 2)
    body = response.json()
    assert [c["creator_key"] for c in body["items"]] == expected[:40]
    assert body["total"] == len(expected)
    assert body["next_offset"] == (40 if len(expected) > 40 else None)
    assert "x-total-capped" not in response.headers
    by_key = {c["creator_key"]: c for c in stored.creators}
    assert all(item == by_key[item["creator_key"]] for item in body["items"])  # as stored


async def test_paging_through_a_narrowed_sorted_set_sees_each_creator_once(stored):
    params = {"sort": "followers_desc", "min_followers": 1000}
    expected = oracle(stored.creators, params)
    assert await stored.page_through(params, limit=7) == expected
    past = (await stored.get(**params, offset=len(expected) + 5)).json()
    assert past["items"] == [] and past["next_offset"] is None


async def test_without_filters_or_sort_the_page_is_the_stored_batches(stored):
    body = (await stored.get(offset=115, limit=10)).json()
    assert [c["creator_key"] for c in body["items"]] == [f"c{n}" for n in range(115, 125)]
    assert body["total"] == 300 and body["next_offset"] == 125
    deep = await stored.get(offset=10_001)  # any depth: batches are found by position
    assert deep.status_code == 200 and deep.json()["items"] == []


@pytest.fixture
def built_with(monkeypatch):
    """Sets constants of the results module that its statements are built from (once per
    filter set, then cached): the cached statements are dropped when they are set and again
    after the test, so each test builds its own."""

    def drop_statements() -> None:
        results._page_statement.cache_clear()
        results._page_query.cache_clear()

    def build_with(**constants: int) -> None:
        for name, value in constants.items():
            monkeypatch.setattr(results, name, value)
        drop_statements()

    yield build_with
    drop_statements()


@pytest.mark.parametrize("walk", [3, 40, results.RANGE_WALK])
async def test_a_follower_range_in_discovery_order_pages_alike_walked_or_from_its_index(
    stored, built_with, walk
):
    """The range's page walks discovery order up to ``RANGE_WALK`` entries, then asks the
    range's index: with a walk of 3 entries every page comes from the index, with 40 the
    pages near the start come from the walk and the later ones from the index."""
    built_with(RANGE_WALK=walk)
    for params in ({"min_followers": 5000}, {"min_followers": 1000, "max_followers": 5000},
                   {"max_followers": 500, "verified": True}):  # fmt: skip
        expected = oracle(stored.creators, params)
        assert await stored.page_through(params, limit=9) == expected, params


@pytest.mark.parametrize("walk", [1, 60, results.TEXT_WALK])
async def test_text_past_the_cap_pages_alike_walked_or_sorted_from_every_match(
    stored, built_with, walk
):
    """Past the count's cap a page of ``q`` walks its sort's index when the count's matches
    say the walk is short (at most ``TEXT_WALK`` entries expected, ``2 * TEXT_WALK`` walked),
    and is sorted from every match otherwise or when the walk stopped short. With a cap of 3
    every set here is past it: a walk of 1 never runs; one of 60 serves the first page of the
    commonest sets and leaves the rest to the sort; the real bound serves every page but the
    last of each set, which the walk finds short and leaves to the sort."""
    built_with(COUNT_CAP=3, TEXT_WALK=walk)
    for params in ({"q": "person"}, {"q": "c1", "sort": "followers_desc"},
                   {"q": "person", "verified": True},
                   {"q": "mail", "has_email": True, "sort": "followers_desc"},
                   {"q": "i love", "verified": False, "has_email": True,
                    "sort": "followers_asc"},
                   {"q": "c1", "min_followers": 1000, "max_followers": 20_000},
                   {"q": "yoga", "has_email": False}):  # fmt: skip
        expected = oracle(stored.creators, params)
        assert len(expected) > 3, params  # past the cap
        assert await stored.page_through(params, limit=7, cap=3) == expected, params


def test_the_runs_of_text_are_its_lowered_triples_of_ascii_letters_and_digits():
    assert runs("Café-Creator_12") == ["ato", "caf", "cre", "eat", "rea", "tor"]
    assert runs("AAAA a1") == ["aaa"] and runs("ab") == []


@pytest.mark.parametrize("cap", [3, 40, COUNT_CAP])
async def test_text_counted_across_the_blocks_of_the_text_index(stored, committed, built_with, cap):
    """On a job reaching past two blocks, the count of ``q`` reads the first ``TEXT_BLOCK``
    creators' matches, then the rest's (by the runs of ``q`` a sample holds least) only while
    it holds fewer than the cap. With the job's thirds moved into the first, the second and
    the fourth block, each text set pages and totals as the oracle says, whether the cap is
    reached in the first block (3), only past it (40: `yoga` holds ~17 in each third) or
    never; `person`, in every creator, is looked up by the one run fewest hold, and the flags
    are checked beside the keys. Another job holds the same creators at the same ordinals:
    the rest's keys name the job, so none of them is counted or paged. `c1` has no run to
    key, so it is read in one scan (the job holds 300 creators: not refused)."""
    async with committed.begin() as conn:
        for first, blocks in ((200, 3), (100, 1)):
            await conn.execute(
                sa.text("UPDATE scraping_job_creators SET ordinal = ordinal + :shift"
                        " WHERE job_id = :job AND ordinal BETWEEN :first AND :first + 99"),
                {"job": stored.job.id, "shift": blocks * TEXT_BLOCK, "first": first},
            )  # fmt: skip
    async with AsyncSession(committed, expire_on_commit=False) as session, session.begin():
        twin = await make_job(session, await make_campaign(session, await make_user(session)))
        await session.execute(
            sa.text("INSERT INTO scraping_job_creators (job_id, platform, creator_key, ordinal,"
                    " creator) SELECT :twin, platform, creator_key, ordinal, creator"
                    " FROM scraping_job_creators WHERE job_id = :job"),
            {"twin": twin.id, "job": stored.job.id},
        )  # fmt: skip
    built_with(COUNT_CAP=cap)
    for params in ({"q": "person"}, {"q": "yoga"}, {"q": "c25"}, {"q": "c12"}, {"q": "c1"},
                   {"q": "yoga", "verified": False, "sort": "followers_desc"},
                   {"q": "mail", "has_email": True, "sort": "followers_asc"}):  # fmt: skip
        expected = oracle(stored.creators, params)
        assert await stored.page_through(params, limit=9, cap=cap) == expected, params


async def test_text_past_the_cap_on_creators_far_apart_in_discovery_order(stored, committed):
    """The walk's estimate multiplies the page's end by how far into the job the counted
    matches reach: with ordinals near the top of their range that product passes 32 bits,
    and the page must still answer (sorted from every match), never a 500."""
    async with committed.begin() as conn:
        await conn.execute(
            sa.text(
                "INSERT INTO scraping_job_creators (job_id, platform, creator_key, ordinal, creator)"
                " SELECT :job, 'tiktok', 'far' || i, 300 + i * 2000000, jsonb_build_object("
                " 'creator_key', 'far' || i, 'username', 'far' || i, 'display_name', 'Person far')"
                " FROM generate_series(0, 799) AS i"
            ),
            {"job": stored.job.id},
        )
    for sort in ("found", "followers_desc"):
        response = await stored.get(q="person", sort=sort, offset=40, limit=50)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["total"] == COUNT_CAP and response.headers["x-total-capped"] == "true"
        # All 300 first; the far ones have no follower count, so they come last either way.
        near = oracle(stored.creators, {"q": "person", "sort": sort})
        expected = (near + [f"far{i}" for i in range(800)])[40:90]
        assert [c["creator_key"] for c in body["items"]] == expected, sort


async def test_text_the_index_cannot_narrow_is_refused_only_past_a_searchs_size(stored, committed):
    """``q`` with no three letters or digits in a row reads every creator of the job: answered
    on a job of at most 1,000 creators (what a search makes), 422 ``query_too_short`` beyond
    it; another user's job stays a 404 whatever the text."""
    for q in ("c1", "%", "é l"):  # the job holds 300: answered
        response = await stored.get(q=q, limit=500)
        assert response.status_code == 200, response.text
        assert response.json()["total"] == len(oracle(stored.creators, {"q": q}))
    async with committed.begin() as conn:
        await conn.execute(
            sa.update(ScrapingJob)
            .where(ScrapingJob.id == stored.job.id)
            .values(processed_results=1001)
        )
    for q in ("c1", "%", "é l", "a-b-c", "c 1"):
        response = await stored.get(q=q, verified=True)
        assert response.status_code == 422, (q, response.text)
        assert response.json()["code"] == "query_too_short"
    assert (await stored.get(q="c12")).json()["total"] == len(oracle(stored.creators, {"q": "c12"}))
    assert (await stored.get(q="Son 1")).status_code == 200  # `son` is three in a row
    response = await stored.client.get(
        f"/jobs/{stored.job.id}/results", params={"q": "c1"}, headers=stored.stranger
    )
    assert response.status_code == 404 and response.json()["code"] == "job_not_found"


@pytest.mark.parametrize(
    "params",
    [
        {"min_followers": -1},
        {"max_followers": 10**12 + 1},
        {"min_followers": 10**30},
        {"min_followers": 5000, "max_followers": 4999},
        {"verified": "maybe"},
        {"has_email": "2"},
        {"q": ""},
        {"q": "   "},
        {"q": "x" * 101},
        {"q": "a\x00b"},
        {"sort": "followers"},
        {"limit": 0},
        {"limit": 501},
        {"offset": -1},
        {"offset": 10**10},
        {"sort": "followers_desc", "offset": 10_001},  # narrowed pages stop at 10,000
        {"verified": True, "offset": 10_001},
    ],
    ids=lambda p: ",".join(f"{k}={str(v)[:12]}" for k, v in p.items()),
)
async def test_out_of_bounds_narrowing_is_a_422_with_a_stable_code(stored, params):
    response = await stored.get(**params)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "validation_error"
    assert stored.modes.seen == []  # refused before any statement


async def test_another_users_job_is_404_whatever_the_narrowing(stored):
    for params in ({"sort": "followers_desc"}, {"verified": True}, {}):
        response = await stored.client.get(
            f"/jobs/{stored.job.id}/results", params=params, headers=stored.stranger
        )
        assert response.status_code == 404 and response.json()["code"] == "job_not_found"


async def test_the_total_of_a_huge_narrowed_set_stops_counting_at_the_cap_but_for_flags(
    service_settings, committed, signing_keys
):
    n = COUNT_CAP + 25
    async with AsyncSession(committed, expire_on_commit=False) as session, session.begin():
        user = await make_user(session)
        job = await make_job(session, await make_campaign(session, user), target_results=1000)
        await session.execute(
            sa.text(
                "INSERT INTO scraping_job_creators (job_id, platform, creator_key, ordinal, creator)"
                " SELECT :job, 'tiktok', 'k' || i, i, jsonb_build_object('creator_key', 'k' || i,"
                " 'followers', i, 'verified', i % 2 = 0) FROM generate_series(0, :n - 1) AS i"
            ),
            {"job": job.id, "n": n},
        )
        await session.execute(
            sa.update(ScrapingJob).where(ScrapingJob.id == job.id).values(processed_results=n)
        )
    headers = {"authorization": f"Bearer {signing_keys.token(user.user_id)}"}
    async with recorded(scraping_app(service_settings)) as (client, _):
        url = f"/jobs/{job.id}/results"
        capped = await client.get(url, params={"min_followers": 0, "limit": 3}, headers=headers)
        assert capped.json()["total"] == COUNT_CAP
        assert capped.headers["x-total-capped"] == "true"
        assert [c["creator_key"] for c in capped.json()["items"]] == ["k0", "k1", "k2"]
        # Under the cap the count is exact; a sort alone reports the job's stored count.
        exact = await client.get(url, params={"min_followers": n - 10}, headers=headers)
        assert exact.json()["total"] == 10 and "x-total-capped" not in exact.headers
        top = await client.get(url, params={"sort": "followers_desc", "limit": 2}, headers=headers)
        assert top.json()["total"] == n and "x-total-capped" not in top.headers
        # The flags alone are exact past the cap (the job's flag counts); beside any other
        # filter they are counted up to it again.
        for params, total in [({"has_email": False}, n),
                              ({"verified": True, "has_email": False}, (n + 1) // 2)]:  # fmt: skip
            flags = await client.get(url, params={**params, "limit": 2}, headers=headers)
            assert flags.json()["total"] == total and "x-total-capped" not in flags.headers
        mixed = await client.get(url, params={"has_email": False, "min_followers": 0},
                                 headers=headers)  # fmt: skip
        assert mixed.json()["total"] == COUNT_CAP and mixed.headers["x-total-capped"] == "true"
        assert [c["creator_key"] for c in top.json()["items"]] == [f"k{n - 1}", f"k{n - 2}"]
