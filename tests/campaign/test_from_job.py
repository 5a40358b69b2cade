"""``POST /lists/{id}/items`` with ``from_job``: black-box over HTTP, with the real scraping worker
answering ``scraping.results.creators`` over real NATS from the stored results."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from services.scraping.repository import JobRepository
from shared.models import ScrapingJob

from ..factories import make_campaign, make_job
from ..support.services import running_worker
from .test_lists import new_list


@pytest.fixture
async def scraping(service_settings, committed) -> AsyncIterator[None]:
    """The real scraping worker (its results reply server) for the duration of the test."""
    async with running_worker("scraping", service_settings):
        yield


def stored_creator(n: int) -> dict[str, Any]:
    return {
        "platform": "tiktok",
        "creator_key": f"c{n}",
        "external_id": f"tt{n}",
        "username": f"c{n}",
        "display_name": f"Creator {n}",
        "profile_url": f"https://tiktok.example/c{n}",
        "followers": 1000 + (n * 7919) % 50_000,
        "verified": n % 3 == 0,
        "emails": [f"c{n}@mail.example"] if n % 4 == 0 else [],
        "bio": "yoga" if n % 5 == 0 else "food",
        "source": "synthetic",
        "synthetic": True,
    }


async def job_with(engine: AsyncEngine, owner, creators: list[dict[str, Any]]) -> ScrapingJob:
    """A job of ``owner`` holding ``creators``, stored by the workers' own store statement."""
    async with AsyncSession(engine, expire_on_commit=False) as session, session.begin():
        job = await make_job(session, await make_campaign(session, owner.user))
        await JobRepository(session).store_creators(
            job.id, job.platform, [(c["creator_key"], c) for c in creators], len(creators)
        )
    return job


async def list_rows(engine: AsyncEngine, list_id: str) -> list[tuple[int, str, int | None]]:
    """``(position, handle, followers)`` of the list's items in position order."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            sa.text(
                "SELECT i.position, p.handle, p.followers FROM list_items i"
                " JOIN creator_profiles p ON p.id = i.creator_id"
                " WHERE i.list_id = :l ORDER BY i.position"
            ),
            {"l": uuid.UUID(list_id)},
        )
        return [tuple(r) for r in rows]


def add(api, owner, list_id: str, from_job: dict[str, Any], **headers: str):
    return api.post(
        f"/lists/{list_id}/items",
        json={"from_job": from_job},
        headers={**owner.headers, **headers},
    )


async def test_named_keys_go_in_as_stored_and_unknown_keys_are_missing(
    api, scraping, make_owner, committed
):
    owner = await make_owner()
    creators = [stored_creator(n) for n in range(20)]
    job = await job_with(committed, owner, creators)
    list_id = await new_list(api, owner)
    keys = ["c3", "c1", "ghost", "C3 ", "c7", "nobody"]  # a repeat (normalised) and two unknown
    response = await add(api, owner, list_id, {"job_id": str(job.id), "creator_keys": keys})
    assert response.status_code == 200, response.text
    assert response.json() == {
        "added": 3, "skipped": 1, "attempted": 4, "missing": ["ghost", "nobody"],
        "truncated": False,
    }  # fmt: skip
    assert await list_rows(committed, list_id) == [
        (i, f"c{n}", creators[n]["followers"]) for i, n in enumerate((3, 1, 7))
    ]
    # Adding again skips them all (the same dedupe as a plain add) and keeps positions.
    again = await add(api, owner, list_id, {"job_id": str(job.id), "creator_keys": ["c1", "c2"]})
    assert again.json() | {"missing": None} == {
        "added": 1, "skipped": 1, "attempted": 2, "missing": None, "truncated": False,
    }  # fmt: skip
    assert [r[0] for r in await list_rows(committed, list_id)] == [0, 1, 2, 3]


async def test_all_with_filters_adds_the_narrowed_set_in_its_order(
    api, scraping, make_owner, committed
):
    owner = await make_owner()
    creators = [stored_creator(n) for n in range(60)]
    job = await job_with(committed, owner, creators)
    list_id = await new_list(api, owner)
    query = {"all": True, "verified": True, "min_followers": 10_000, "sort": "followers_desc"}
    response = await add(api, owner, list_id, {"job_id": str(job.id), **query})
    expected = sorted(
        (c for c in creators if c["verified"] and c["followers"] >= 10_000),
        key=lambda c: -c["followers"],
    )
    assert response.status_code == 200, response.text
    assert response.json() == {
        "added": len(expected), "skipped": 0, "attempted": len(expected), "missing": [],
        "truncated": False,
    }  # fmt: skip
    assert await list_rows(committed, list_id) == [
        (i, c["username"], c["followers"]) for i, c in enumerate(expected)
    ]
    q = await add(api, owner, list_id, {"job_id": str(job.id), "all": True, "q": "YOGA"})
    yoga = [c for c in creators if c["bio"] == "yoga"]
    assert q.json()["attempted"] == len(yoga) and q.json()["truncated"] is False


async def test_all_takes_at_most_5000_and_says_truncated(api, scraping, make_owner, committed):
    owner = await make_owner()
    async with AsyncSession(committed, expire_on_commit=False) as session, session.begin():
        job = await make_job(session, await make_campaign(session, owner.user))
        await session.execute(
            sa.text(
                "INSERT INTO scraping_job_creators (job_id, platform, creator_key, ordinal, creator)"
                " SELECT :job, 'tiktok', 'k' || i, i, jsonb_build_object('platform', 'tiktok',"
                " 'creator_key', 'k' || i, 'username', 'k' || i, 'followers', i)"
                " FROM generate_series(0, 5009) AS i"
            ),
            {"job": job.id},
        )
    big, exact = await new_list(api, owner, "big"), await new_list(api, owner, "exact")
    response = await add(api, owner, big, {"job_id": str(job.id), "all": True})
    assert response.status_code == 200, response.text
    assert response.json() | {"missing": []} == {
        "added": 5000, "skipped": 0, "attempted": 5000, "missing": [], "truncated": True,
    }  # fmt: skip
    rows = await list_rows(committed, big)
    assert [r[0] for r in rows] == list(range(5000)) and rows[-1][1] == "k4999"
    # Exactly 5,000 matching is not truncated.
    narrowed = {"job_id": str(job.id), "all": True, "min_followers": 10}
    response = await add(api, owner, exact, narrowed)
    assert (response.json()["added"], response.json()["truncated"]) == (5000, False)


async def test_all_with_text_the_index_cannot_narrow_is_refused_past_a_searchs_size(
    api, scraping, make_owner, committed
):
    owner = await make_owner()
    job = await job_with(committed, owner, [stored_creator(n) for n in range(10)])
    list_id = await new_list(api, owner)
    short = {"job_id": str(job.id), "all": True, "q": "yo"}
    response = await add(api, owner, list_id, short)  # a job a search makes: answered
    assert response.status_code == 200 and response.json()["added"] == 2, response.text
    async with committed.begin() as conn:
        await conn.execute(
            sa.update(ScrapingJob).where(ScrapingJob.id == job.id).values(processed_results=1001)
        )
    other = await new_list(api, owner, "other")
    response = await add(api, owner, other, short)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "query_too_short"
    assert await list_rows(committed, other) == []
    response = await add(api, owner, other, {**short, "q": "yog"})
    assert response.status_code == 200 and response.json()["added"] == 2, response.text


async def test_another_users_job_is_404_and_adds_nothing(api, scraping, make_owner, committed):
    owner, stranger = await make_owner(), await make_owner()
    job = await job_with(committed, stranger, [stored_creator(n) for n in range(5)])
    list_id = await new_list(api, owner)
    for body in ({"creator_keys": ["c1"]}, {"all": True}):
        response = await add(api, owner, list_id, {"job_id": str(job.id), **body})
        assert response.status_code == 404, response.text
        assert response.json()["code"] == "job_not_found"
    unknown = await add(api, owner, list_id, {"job_id": str(uuid.uuid4()), "all": True})
    assert unknown.json()["code"] == "job_not_found"
    assert await list_rows(committed, list_id) == []


async def test_scraping_down_is_503_and_adds_nothing(api, make_owner, committed):
    owner = await make_owner()
    job = await job_with(committed, owner, [stored_creator(n) for n in range(5)])
    list_id = await new_list(api, owner)
    response = await add(
        api, owner, list_id, {"job_id": str(job.id), "creator_keys": ["c1"]},
        **{"Idempotency-Key": "down-then-up"},
    )  # fmt: skip
    assert response.status_code == 503, response.text
    assert response.json()["code"] == "dependency_unavailable"
    assert await list_rows(committed, list_id) == []


async def test_a_retried_from_job_add_is_answered_again_without_a_second_effect(
    api, scraping, make_owner, committed
):
    owner = await make_owner()
    job = await job_with(committed, owner, [stored_creator(n) for n in range(5)])
    list_id = await new_list(api, owner)
    body = {"job_id": str(job.id), "creator_keys": ["c1", "c2"]}
    first = await add(api, owner, list_id, body, **{"Idempotency-Key": "k-1"})
    again = await add(api, owner, list_id, body, **{"Idempotency-Key": "k-1"})
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json() and first.json()["added"] == 2
    assert again.headers.get("idempotent-replayed") == "true"
    other = await add(api, owner, list_id, {**body, "creator_keys": ["c3"]},
                      **{"Idempotency-Key": "k-1"})  # fmt: skip
    assert (other.status_code, other.json()["code"]) == (422, "idempotency_key_reused")
    assert len(await list_rows(committed, list_id)) == 2


async def test_concurrent_overlapping_from_job_adds_keep_positions_gap_free(
    api, scraping, make_owner, committed
):
    owner = await make_owner()
    job = await job_with(committed, owner, [stored_creator(n) for n in range(140)])
    list_id = await new_list(api, owner)
    # Ten requests of 50 keys overlapping heavily (0..49, 10..59, …, 90..139), half as `all`
    # windows by follower range would not overlap predictably, so keys it is.
    windows = [[f"c{n}" for n in range(k * 10, k * 10 + 50)] for k in range(10)]
    responses = await asyncio.gather(
        *(add(api, owner, list_id, {"job_id": str(job.id), "creator_keys": w}) for w in windows)
    )
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
    assert sum(r.json()["added"] for r in responses) == 140
    assert sum(r.json()["skipped"] for r in responses) == 500 - 140
    rows = await list_rows(committed, list_id)
    assert [r[0] for r in rows] == list(range(140))  # appended without gaps or repeats
    assert sorted(r[1] for r in rows) == sorted(f"c{n}" for n in range(140))


@pytest.mark.parametrize(
    "body",
    [
        {"from_job": {"job_id": "JOB", "creator_keys": ["c1"]}, "items": [{"platform": "tiktok",
         "external_id": "x", "handle": "x"}]},  # both sources
        {"from_job": {"job_id": "JOB"}},  # neither keys nor all
        {"from_job": {"job_id": "JOB", "creator_keys": ["c1"], "all": True}},
        {"from_job": {"job_id": "JOB", "all": False}},
        {"from_job": {"job_id": "JOB", "creator_keys": ["c1"], "verified": True}},
        {"from_job": {"job_id": "JOB", "creator_keys": []}},
        {"from_job": {"job_id": "JOB", "creator_keys": [f"c{n}" for n in range(501)]}},
        {"from_job": {"job_id": "JOB", "creator_keys": ["x" * 256]}},
        {"from_job": {"job_id": "JOB", "all": True, "min_followers": 5, "max_followers": 4}},
        {"from_job": {"job_id": "JOB", "all": True, "q": "x" * 101}},
        {"from_job": {"job_id": "JOB", "all": True, "sort": "newest"}},
        {"from_job": {"job_id": "JOB", "all": True, "limit": 5}},  # unknown field
        {"from_job": {"job_id": "not-a-uuid", "all": True}},
    ],
)  # fmt: skip
async def test_bad_from_job_bodies_are_422(api, make_owner, committed, body):
    owner = await make_owner()
    list_id = await new_list(api, owner)
    text = str(body).replace("'", '"').replace("True", "true").replace("False", "false")
    text = text.replace('"JOB"', f'"{uuid.uuid4()}"')
    response = await api.post(
        f"/lists/{list_id}/items", content=text, headers={**owner.headers,
                                                           "content-type": "application/json"}
    )  # fmt: skip
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "validation_error"
