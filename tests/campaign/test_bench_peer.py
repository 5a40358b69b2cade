"""The bench's template-style peer (``tests/bench/baselines.py``: ``peer_app``) answers
``POST /lists/{id}/items`` with ``from_job`` as Scout does, and leaves the same list and the
same creator profiles behind, on the same database: its throughput is compared with Scout's
only because it does the same work."""

import pickle
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db import libpq_url
from tests.bench.baselines import ISSUER, peer_app

from .test_from_job import add, job_with, list_rows, scraping, stored_creator
from .test_lists import new_list

__all__ = ["scraping"]  # the fixture, imported for the tests below

PROFILE_COLUMNS = (
    "platform, external_id, handle, display_name, avatar_url, url, followers,"
    " engagement_rate, category, metadata"
)


@pytest.fixture
async def peer(database_url, signing_keys, tmp_path, monkeypatch) -> AsyncIterator[Any]:
    """The peer app on the test database, trusting the test keys, driven in-process."""
    capture = tmp_path / "capture.pkl"
    capture.write_bytes(
        pickle.dumps({"dsn": libpq_url(database_url), "public_key": signing_keys.public_pem})
    )
    monkeypatch.setenv("BENCH_CAPTURE", str(capture))
    app = peer_app()
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://peer") as client:
            yield client


def peer_headers(signing_keys, owner) -> dict[str, str]:
    return {"authorization": f"Bearer {signing_keys.token(owner.user.user_id, issuer=ISSUER)}"}


async def profiles(engine: AsyncEngine) -> list[tuple]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            sa.text(f"SELECT {PROFILE_COLUMNS} FROM creator_profiles ORDER BY external_id")
        )
        return [tuple(r) for r in rows]


async def stats(engine: AsyncEngine, list_id: str) -> tuple[int, int]:
    async with engine.connect() as conn:
        row = await conn.execute(
            sa.text("SELECT creator_count, follower_sum FROM creator_lists WHERE id = :l"),
            {"l": uuid.UUID(list_id)},
        )
        return tuple(row.one())


async def test_peer_answers_and_writes_what_scout_does(
    api, peer, scraping, make_owner, committed, signing_keys
):
    owner = await make_owner()
    creators = [stored_creator(n) for n in range(20)]
    creators[5] = {**creators[5], "engagement_rate": 3.25, "avatar_url": "https://a.example/5"}
    job = await job_with(committed, owner, creators)
    requests = [
        ["c3", "c1", "ghost", "C3 ", "c7", "nobody", "c5"],  # a repeat and two unknown keys
        ["c1", "c2", "c5"],  # two already listed
        ["c3", "c1", "c7", "c2"],  # all listed: adds none
    ]
    answers: dict[str, list[Any]] = {}
    written: dict[str, tuple] = {}
    for side in ("scout", "peer"):
        client = api if side == "scout" else peer
        headers = {} if side == "scout" else peer_headers(signing_keys, owner)
        list_id = await new_list(api, owner, name=side)
        answers[side] = [
            (r.status_code, r.json())
            for keys in requests
            for r in [
                await add(client, owner, list_id, {"job_id": str(job.id), "creator_keys": keys},
                          **headers)
            ]
        ]  # fmt: skip
        written[side] = (
            await list_rows(committed, list_id),
            await stats(committed, list_id),
            await profiles(committed),
        )
        # The next side creates the profiles itself rather than finding these.
        async with committed.begin() as conn:
            await conn.execute(sa.text("DELETE FROM creator_profiles"))
    assert answers["scout"][0] == (
        200,
        {"added": 4, "skipped": 1, "attempted": 5, "missing": ["ghost", "nobody"],
         "truncated": False},
    )  # fmt: skip
    assert answers["peer"] == answers["scout"]
    assert [r[1] for r in written["scout"][0]] == ["c3", "c1", "c7", "c5", "c2"]
    assert written["peer"] == written["scout"]


async def test_peer_refuses_what_scout_refuses(
    api, peer, scraping, make_owner, committed, signing_keys
):
    owner, stranger = await make_owner(), await make_owner()
    job = await job_with(committed, owner, [stored_creator(1)])
    theirs = await job_with(committed, stranger, [stored_creator(2)])
    mine, not_mine = await new_list(api, owner), await new_list(api, stranger)
    cases = [
        (not_mine, {"job_id": str(job.id), "creator_keys": ["c1"]}),  # another user's list
        (mine, {"job_id": str(theirs.id), "creator_keys": ["c2"]}),  # another user's job
        (mine, {"job_id": str(uuid.uuid4()), "creator_keys": ["c1"]}),  # no such job
        (str(uuid.uuid4()), {"job_id": str(job.id), "creator_keys": ["c1"]}),  # no such list
        (mine, {"job_id": str(job.id), "creator_keys": []}),  # no keys
        (mine, {"job_id": str(job.id), "creator_keys": [" "]}),  # a blank key
        (mine, {"job_id": "nope", "creator_keys": ["c1"]}),  # not a job id
    ]
    for list_id, body in cases:
        scout = await add(api, owner, list_id, body)
        other = await add(peer, owner, list_id, body, **peer_headers(signing_keys, owner))
        assert (other.status_code, scout.status_code) in {(404, 404), (422, 422)}, body
        assert other.status_code == scout.status_code, body
    assert await list_rows(committed, mine) == []
