"""``Idempotency-Key`` on every creating POST: one effect however many times (and however
concurrently) a request is sent, the first response replayed, reuse and races refused, keys
scoped per user, a crashed first attempt taken over without a second effect, keys pruned."""

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from shared import retention
from shared.events import rpc
from shared.events.streams import connect
from shared.models import (
    Campaign,
    CreatorList,
    IdempotencyKey,
    ListItem,
    ScrapingJob,
    UsageReservation,
    User,
)
from shared.web.idempotency import request_hash

from ..factories import make_campaign, make_list, make_user
from ..support.fake_stripe import FakeStripe, fake_stripe
from ..support.services import running_api, running_worker
from ..support.wait import eventually

REPLAYED = "Idempotent-Replayed"


@dataclass
class Caller:
    user: User
    campaign: Campaign
    creator_list: CreatorList
    headers: dict[str, str]

    def keyed(self, key: str) -> dict[str, str]:
        return {**self.headers, "Idempotency-Key": key}


@dataclass
class Stack:
    apis: dict[str, httpx.AsyncClient]
    stripe: FakeStripe
    engine: AsyncEngine


@pytest.fixture
async def stack(committed, service_settings) -> AsyncIterator[Stack]:
    """The campaign, scraping and billing APIs and the billing worker (quota), Stripe faked."""
    async with AsyncExitStack() as exits:
        stripe = await exits.enter_async_context(fake_stripe())
        settings = service_settings.model_copy(
            update={"stripe_secret_key": "sk_test_idem", "stripe_api_base": stripe.url}
        )
        await exits.enter_async_context(running_worker("billing", settings))
        apis = {
            name: await exits.enter_async_context(running_api(name, settings))
            for name in ("campaign", "scraping", "billing")
        }
        yield Stack(apis, stripe, committed)


@pytest.fixture
def caller(committed, signing_keys) -> Callable[[], Awaitable[Caller]]:
    async def make() -> Caller:
        async with AsyncSession(committed, expire_on_commit=False) as session, session.begin():
            user = await make_user(session)
            await session.execute(
                sa.text(
                    "UPDATE user_usage SET plan_campaigns_limit = -1, plan_creators_limit = -1"
                    " WHERE user_id = :u"
                ),
                {"u": user.id},
            )
            campaign = await make_campaign(session, user)
            creator_list = await make_list(session, user)
        token = signing_keys.token(user.user_id)
        return Caller(user, campaign, creator_list, {"Authorization": f"Bearer {token}"})

    return make


async def _scalar(engine: AsyncEngine, stmt) -> Any:
    async with engine.connect() as conn:
        return await conn.scalar(stmt)


def _count(model, *where) -> sa.Select:
    return sa.select(sa.func.count()).select_from(model).where(*where)


@dataclass(frozen=True)
class Route:
    """One idempotent POST: where, what body, and how to count its effect."""

    api: str
    path: Callable[[Caller], str]
    body: Callable[[Caller], dict[str, Any]]
    effects: Callable[[Stack, Caller], Awaitable[int]]


async def _rows(stack: Stack, stmt) -> int:
    return await _scalar(stack.engine, stmt)


async def _checkout_sessions(stack: Stack, who: Caller) -> int:
    return len(stack.stripe.sessions)


ROUTES = {
    "campaigns": Route(
        "campaign",
        lambda c: "/campaigns",
        lambda c: {"name": "Spring launch"},
        lambda s, c: _rows(s, _count(Campaign, Campaign.user_id == c.user.id)),
    ),
    "jobs": Route(
        "scraping",
        lambda c: "/jobs",
        lambda c: {
            "campaign_id": str(c.campaign.id),
            "platform": "tiktok",
            "search_type": "keyword",
            "keywords": ["fitness"],
            "region": "US",
            "target_results": 10,
        },
        lambda s, c: _rows(s, _count(ScrapingJob, ScrapingJob.user_id == c.user.id)),
    ),
    "lists": Route(
        "campaign",
        lambda c: "/lists",
        lambda c: {"name": "Shortlist"},
        lambda s, c: _rows(s, _count(CreatorList, CreatorList.user_id == c.user.id)),
    ),
    "list_items": Route(
        "campaign",
        lambda c: f"/lists/{c.creator_list.id}/items",
        lambda c: {
            "items": [
                {"platform": "tiktok", "external_id": f"ext-{i}", "handle": f"creator{i}"}
                for i in range(3)
            ]
        },
        # Items dedupe, so a second run would add no row: it would answer "added 0", which
        # the test's "every success is the first answer" catches.
        lambda s, c: _rows(s, _count(ListItem, ListItem.list_id == c.creator_list.id)),
    ),
    "checkout": Route(
        "billing",
        lambda c: "/billing/checkout",
        lambda c: {"plan": "growth", "interval": "monthly"},
        _checkout_sessions,
    ),
}
EFFECT = {"campaigns": 1, "jobs": 1, "lists": 1, "list_items": 3, "checkout": 1}


@pytest.mark.parametrize("name", sorted(ROUTES))
async def test_ten_identical_requests_at_once_have_one_effect_and_one_answer(stack, caller, name):
    route, who = ROUTES[name], await caller()
    api, path, body = stack.apis[route.api], route.path(who), route.body(who)
    key = f"key-{uuid.uuid4()}"
    before = await route.effects(stack, who)
    responses = await asyncio.gather(
        *(api.post(path, json=body, headers=who.keyed(key)) for _ in range(10))
    )
    statuses = sorted(r.status_code for r in responses)
    done = [r for r in responses if r.status_code < 300]
    assert done and set(statuses) <= {done[0].status_code, 409}, [r.text for r in responses]
    assert {r.json()["code"] for r in responses if r.status_code == 409} <= {
        "idempotency_key_in_use"
    }
    assert len({r.content for r in done}) == 1  # every success is the one first answer
    first = [r for r in done if r.headers.get(REPLAYED) != "true"]
    assert len(first) == 1
    assert await route.effects(stack, who) - before == EFFECT[name]
    if name in ("campaigns", "jobs"):
        holds = _count(UsageReservation, UsageReservation.user_id == who.user.id)
        assert await _scalar(stack.engine, holds) == 1  # no second reservation either

    # Afterwards the same request is answered from the store, byte for byte.
    again = await api.post(path, json=body, headers=who.keyed(key))
    assert (again.status_code, again.content) == (first[0].status_code, first[0].content)
    assert again.headers[REPLAYED] == "true"
    assert again.headers["content-type"] == first[0].headers["content-type"]
    assert await route.effects(stack, who) - before == EFFECT[name]


async def test_the_same_key_with_another_body_or_path_is_refused(stack, caller):
    who = await caller()
    api, key = stack.apis["campaign"], "reused-key"
    first = await api.post("/campaigns", json={"name": "A"}, headers=who.keyed(key))
    assert first.status_code == 201
    other_body = await api.post("/campaigns", json={"name": "B"}, headers=who.keyed(key))
    other_path = await api.post("/lists", json={"name": "A"}, headers=who.keyed(key))
    for response in (other_body, other_path):
        assert (response.status_code, response.json()["code"]) == (422, "idempotency_key_reused")
    # A body that differs only in spacing and key order is the same request.
    spaced = await api.post(
        "/campaigns",
        content=b'{ "name" :  "A" }',
        headers={**who.keyed(key), "content-type": "application/json"},
    )
    assert (spaced.status_code, spaced.headers.get(REPLAYED)) == (201, "true")
    assert await _scalar(stack.engine, _count(Campaign, Campaign.user_id == who.user.id)) == 2


async def test_a_repeat_while_the_first_still_runs_is_409_then_replayed(stack, caller):
    who = await caller()
    api, body = stack.apis["campaign"], {"name": "Slow"}
    # Billing's reserve waits on the user's usage row, so the first request is held up there.
    async with stack.engine.connect() as conn, conn.begin():
        await conn.execute(
            sa.text("SELECT 1 FROM user_usage WHERE user_id = :u FOR UPDATE"), {"u": who.user.id}
        )
        first = asyncio.create_task(api.post("/campaigns", json=body, headers=who.keyed("slow")))

        async def claimed() -> bool:
            return await _scalar(stack.engine, _count(IdempotencyKey)) == 1

        await eventually(claimed)
        racing = await api.post("/campaigns", json=body, headers=who.keyed("slow"))
        assert (racing.status_code, racing.json()["code"]) == (409, "idempotency_key_in_use")
    assert (await first).status_code == 201
    again = await api.post("/campaigns", json=body, headers=who.keyed("slow"))
    assert (again.status_code, again.headers[REPLAYED]) == (201, "true")
    assert await _scalar(stack.engine, _count(Campaign, Campaign.user_id == who.user.id)) == 2


async def test_keys_are_scoped_per_user(stack, caller):
    alice, bob = await caller(), await caller()
    api = stack.apis["campaign"]
    answers = [
        await api.post("/campaigns", json={"name": "Same"}, headers=who.keyed("shared-key"))
        for who in (alice, bob)
    ]
    assert [a.status_code for a in answers] == [201, 201]
    assert [a.headers.get(REPLAYED) for a in answers] == [None, None]
    assert answers[0].json()["id"] != answers[1].json()["id"]


@pytest.mark.parametrize("key", ["", "x" * 256, "has space", "tab\there", "caf\u00e9"])
async def test_a_key_that_is_not_1_to_255_visible_ascii_characters_is_422(stack, caller, key):
    who = await caller()
    response = await stack.apis["campaign"].post(
        "/campaigns",
        json={"name": "x"},
        headers={**who.headers, "Idempotency-Key": key.encode("latin-1")},  # type: ignore[dict-item]
    )
    assert (response.status_code, response.json()["code"]) == (422, "validation_error")
    assert await _scalar(stack.engine, _count(Campaign, Campaign.user_id == who.user.id)) == 1


async def test_a_failed_request_stores_nothing_and_its_retry_runs(stack, caller):
    who = await caller()
    api = stack.apis["scraping"]
    body = {**ROUTES["jobs"].body(who), "campaign_id": str(uuid.uuid4())}  # not theirs: 404
    failed = await api.post("/jobs", json=body, headers=who.keyed("retry-me"))
    assert failed.status_code == 404
    assert await _scalar(stack.engine, _count(IdempotencyKey)) == 0
    body["campaign_id"] = str(who.campaign.id)  # a different body is fine: nothing was stored
    retried = await api.post("/jobs", json=body, headers=who.keyed("retry-me"))
    assert retried.status_code == 202, retried.text


async def test_a_crashed_first_attempt_is_taken_over_with_its_hold_and_no_second_effect(
    stack, caller, nats_url, nats_prefix
):
    """The first attempt claimed the key and reserved at billing, then its process died. Once
    its lease is over, the repeat runs the operation under the same id: it finds the hold the
    first attempt took instead of taking a second, and creates the campaign once."""
    who = await caller()
    body = {"name": "Phoenix"}
    key = "crash-key"
    async with stack.engine.begin() as conn:
        claim_id = await conn.scalar(
            sa.insert(IdempotencyKey)
            .values(
                service="campaign", clerk_user_id=who.user.user_id, key=key, method="POST",
                path="/campaigns", request_hash=request_hash(b'{"name":"Phoenix"}'),
                locked_until=sa.func.now() - timedelta(seconds=1),
            )
            .returning(IdempotencyKey.id)
        )  # fmt: skip
    nc = await connect(nats_url, name="crashed-attempt")
    try:
        held = await rpc.request(
            nc,
            "billing.usage.reserve",
            {
                "user_id": str(who.user.id), "resource": "campaigns", "amount": 1,
                "idempotency_key": f"campaign:{claim_id}", "ttl_seconds": 300,
            },
            prefix=nats_prefix,
        )  # fmt: skip
    finally:
        await nc.close()
    response = await stack.apis["campaign"].post("/campaigns", json=body, headers=who.keyed(key))
    assert response.status_code == 201, response.text
    assert response.json()["id"] == str(claim_id)
    reservations = await _scalar(
        stack.engine,
        _count(
            UsageReservation,
            UsageReservation.user_id == who.user.id,
            UsageReservation.resource == "campaigns",
        ),
    )
    status = await _scalar(
        stack.engine,
        sa.select(UsageReservation.status).where(UsageReservation.id == held.reservation_id),
    )
    used = await _scalar(
        stack.engine,
        sa.text("SELECT usage_campaigns_current FROM user_usage WHERE user_id = :u").bindparams(
            u=who.user.id
        ),
    )
    assert (reservations, status, used) == (1, "confirmed", 1)
    async with stack.engine.connect() as conn:
        attempt = await conn.scalar(sa.select(IdempotencyKey.attempt))
    assert attempt == 2


async def test_a_slow_first_attempt_that_lost_its_lease_cannot_add_a_second_effect(stack, caller):
    """The first request outlives its lease and a repeat takes the operation over: whichever
    gets to the database first, one campaign and one counted campaign come out of it."""
    who = await caller()
    api, body = stack.apis["campaign"], {"name": "Tortoise"}
    async with stack.engine.connect() as conn, conn.begin():
        await conn.execute(
            sa.text("SELECT 1 FROM user_usage WHERE user_id = :u FOR UPDATE"), {"u": who.user.id}
        )
        slow = asyncio.create_task(api.post("/campaigns", json=body, headers=who.keyed("lease")))

        async def claimed() -> bool:
            return await _scalar(stack.engine, _count(IdempotencyKey)) == 1

        await eventually(claimed)
        async with stack.engine.begin() as other:  # the lease runs out
            await other.execute(
                sa.update(IdempotencyKey).values(locked_until=sa.func.now() - timedelta(seconds=1))
            )
        repeat = asyncio.create_task(api.post("/campaigns", json=body, headers=who.keyed("lease")))

        async def taken_over() -> bool:
            return await _scalar(stack.engine, sa.select(IdempotencyKey.attempt)) == 2

        await eventually(taken_over)
    answers = sorted([(await slow).status_code, (await repeat).status_code])
    assert answers == [201, 409]
    assert await _scalar(stack.engine, _count(Campaign, Campaign.user_id == who.user.id)) == 2

    async def counted_once() -> bool:
        used = await _scalar(
            stack.engine,
            sa.text("SELECT usage_campaigns_current FROM user_usage WHERE user_id = :u").bindparams(
                u=who.user.id
            ),
        )
        holds = sa.select(UsageReservation.status).where(UsageReservation.user_id == who.user.id)
        async with stack.engine.connect() as conn:
            statuses = list((await conn.execute(holds)).scalars())
        return used == 1 and statuses == ["confirmed"]

    await eventually(counted_once)


async def test_keys_are_replayed_for_the_window_then_forgotten_and_pruned(
    stack, caller, service_settings
):
    who = await caller()
    api, body = stack.apis["campaign"], {"name": "Yesterday"}
    first = await api.post("/campaigns", json=body, headers=who.keyed("old-key"))
    assert first.status_code == 201
    async with stack.engine.begin() as conn:  # a day and a bit later
        await conn.execute(
            sa.update(IdempotencyKey).values(created_at=sa.func.now() - timedelta(hours=25))
        )
    again = await api.post("/campaigns", json=body, headers=who.keyed("old-key"))
    assert (again.status_code, again.headers.get(REPLAYED)) == (201, None)
    assert again.json()["id"] != first.json()["id"]  # a new operation: the key was forgotten

    await api.post("/campaigns", json={"name": "other"}, headers=who.keyed("recent-key"))
    async with stack.engine.begin() as conn:
        await conn.execute(
            sa.update(IdempotencyKey)
            .where(IdempotencyKey.key == "old-key")
            .values(created_at=sa.func.now() - timedelta(hours=25))
        )
    pruned = await retention.prune(stack.engine, "campaign", service_settings)
    assert pruned["idempotency_keys"] == 1
    async with stack.engine.connect() as conn:
        left = list((await conn.execute(sa.select(IdempotencyKey.key))).scalars())
    assert left == ["recent-key"]
