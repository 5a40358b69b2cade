"""Per-user rate limits: exact under concurrency, per user, with Retry-After, refilling."""

import asyncio
from datetime import timedelta

import pytest
import sqlalchemy as sa
from fastapi import APIRouter
from pydantic import ValidationError

from shared.ratelimit import Limit, hit, per_user
from shared.settings import Settings
from shared.web import create_app

from .factories import clerk_id
from .support.http import serving


async def test_concurrent_hits_pass_exactly_the_budget(committed):
    key = f"test:burst:{clerk_id()}"
    results = await asyncio.gather(*(hit(committed, key, Limit(5)) for _ in range(20)))
    allowed = [r for r in results if r is None]
    assert len(allowed) == 5
    waits = [r for r in results if r is not None]
    assert all(0 < w <= 12.5 for w in waits)  # one interval (12 s at 5/min) plus slack


async def test_the_budget_refills_at_the_rate(committed):
    key = f"test:refill:{clerk_id()}"
    fast = Limit(rate=20, period=timedelta(seconds=1), burst=1)  # one every 50 ms
    assert await hit(committed, key, fast) is None
    wait = await hit(committed, key, fast)
    assert wait is not None and wait <= 0.05
    await asyncio.sleep(wait + 0.01)
    assert await hit(committed, key, fast) is None
    async with committed.connect() as conn:
        assert (
            await conn.scalar(
                sa.text("SELECT count(*) FROM rate_limits WHERE key = :k"), {"k": key}
            )
            == 1
        )


async def test_routes_answer_429_with_retry_after_per_user(
    committed, service_settings, signing_keys
):
    router = APIRouter()
    Limited = per_user("probe", "rate_limit_list_writes_per_minute")

    @router.post("/probe")
    async def probe(user: Limited) -> dict:
        return {"ok": user.clerk_user_id}

    settings = service_settings.model_copy(update={"rate_limit_list_writes_per_minute": 3})
    alice, bob = clerk_id(), clerk_id()
    async with serving(create_app("campaign", routers=[router], settings=settings)) as client:

        def as_(user):
            return {"authorization": f"Bearer {signing_keys.token(user)}"}

        codes = [
            r.status_code
            for r in await asyncio.gather(
                *(client.post("/probe", headers=as_(alice)) for _ in range(8))
            )
        ]
        assert sorted(codes) == [200] * 3 + [429] * 5
        refused = await client.post("/probe", headers=as_(alice))
        assert refused.status_code == 429
        assert refused.json()["code"] == "rate_limited"
        assert 1 <= int(refused.headers["retry-after"]) <= 20
        assert (await client.post("/probe", headers=as_(bob))).status_code == 200
        # No token is still 401, not a rate-limit answer.
        assert (await client.post("/probe")).status_code == 401


def test_a_budget_too_fine_for_the_limiter_is_refused_at_start():
    """Past a million a minute a request's cost would round to zero microseconds and the
    limiter would refuse at random; the setting says so instead."""
    with pytest.raises(ValidationError, match="rate_limit_list_writes_per_minute"):
        Settings(rate_limit_list_writes_per_minute=1_000_001)
    assert Settings(rate_limit_list_writes_per_minute=1_000_000).rate_limit_list_writes_per_minute
