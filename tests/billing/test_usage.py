"""Usage reservations over the real RPC: limits hold under concurrency, keys charge once."""

import asyncio
import uuid

import pytest
import sqlalchemy as sa

from shared.events import rpc
from shared.events.catalogue import UsageReserveReply

from ..support.services import running_worker
from .conftest import billing_user, counters


async def _reserve(nc, prefix, user_id, resource="creators", amount=1, key=None, ttl=900):
    return await rpc.request(
        nc,
        "billing.usage.reserve",
        {
            "user_id": str(user_id),
            "resource": resource,
            "amount": amount,
            "idempotency_key": key or uuid.uuid4().hex,
            "ttl_seconds": ttl,
        },
        prefix=prefix,
        timeout=10,
    )


async def _release(nc, prefix, reservation_id, used=0):
    return await rpc.request(
        nc,
        "billing.usage.release",
        {"reservation_id": str(reservation_id), "used_amount": used},
        prefix=prefix,
        timeout=10,
    )


async def test_twenty_concurrent_reserves_at_limit_three_grant_exactly_three(
    committed, service_settings, nc, nats_prefix
):
    user = await billing_user(committed, plan="glow_up", status="active")  # 3 campaigns
    async with running_worker("billing", service_settings):
        replies = await asyncio.gather(
            *(_reserve(nc, nats_prefix, user.id, "campaigns") for _ in range(20))
        )
    allowed = [r for r in replies if r.allowed]
    denied = [r for r in replies if not r.allowed]
    assert len(allowed) == 3
    assert {r.code for r in denied} == {"campaign_limit_reached"}
    assert all(r.limit == 3 and r.reservation_id is None for r in denied)
    assert (await counters(committed, user.id))["campaigns"] == 3
    async with committed.connect() as conn:
        held = await conn.scalar(
            sa.text("SELECT count(*) FROM usage_reservations WHERE user_id = :u"), {"u": user.id}
        )
    assert held == 3  # denied attempts leave nothing behind


async def test_override_limit_and_amounts_count_in_flight_holds(
    committed, service_settings, nc, nats_prefix
):
    user = await billing_user(committed, plan="growth", status="active", plan_creators_limit=250)
    async with running_worker("billing", service_settings):
        replies = await asyncio.gather(
            *(_reserve(nc, nats_prefix, user.id, "creators", amount=100) for _ in range(6))
        )
    assert sum(r.allowed for r in replies) == 2  # 100 + 100 held; a third would be 300 > 250
    assert {r.code for r in replies if not r.allowed} == {"creators_limit_reached"}
    assert (await counters(committed, user.id))["creators"] == 200


async def test_same_idempotency_key_concurrently_reserves_once(
    committed, service_settings, nc, nats_prefix
):
    user = await billing_user(committed, plan="growth", status="active")
    async with running_worker("billing", service_settings):
        replies = await asyncio.gather(
            *(_reserve(nc, nats_prefix, user.id, "enrichments", 7, key="job-1") for _ in range(10))
        )
    assert all(r.allowed for r in replies)
    assert len({r.reservation_id for r in replies}) == 1
    assert (await counters(committed, user.id))["enrichments"] == 7


async def test_no_plan_is_zero_allowance_and_unlimited_is_unlimited(
    committed, service_settings, nc, nats_prefix
):
    nobody = await billing_user(committed)  # provisioned: no plan, status none
    unlimited = await billing_user(committed, plan="fame_flex", status="active")
    async with running_worker("billing", service_settings):
        denied = await _reserve(nc, nats_prefix, nobody.id, "enrichments")
        big = await _reserve(nc, nats_prefix, unlimited.id, "creators", amount=10**6)
        stranger = await _reserve(nc, nats_prefix, uuid.uuid4(), "campaigns")
    # No plan at all is its own answer: the user needs a plan, not an upgrade.
    assert denied == UsageReserveReply(allowed=False, used=0, limit=0, code="no_active_plan")
    assert big.allowed and big.limit == -1 and big.used == 10**6
    assert (stranger.allowed, stranger.code) == (False, "no_active_plan")


async def test_release_confirms_used_part_gives_back_the_rest_and_is_idempotent(
    committed, service_settings, nc, nats_prefix
):
    user = await billing_user(committed, plan="growth", status="active", plan_creators_limit=100)
    async with running_worker("billing", service_settings):
        hold = await _reserve(nc, nats_prefix, user.id, "creators", amount=100)
        assert not (await _reserve(nc, nats_prefix, user.id, "creators", amount=1)).allowed
        releases = await asyncio.gather(
            *(_release(nc, nats_prefix, hold.reservation_id, used=40) for _ in range(5))
        )
        assert {(r.status, r.released) for r in releases} == {("confirmed", 60)}
        assert (await counters(committed, user.id))["creators"] == 40
        again = await _reserve(nc, nats_prefix, user.id, "creators", amount=60)
        assert again.allowed and again.used == 100
        nothing_used = await _release(nc, nats_prefix, again.reservation_id, used=0)
        assert (nothing_used.status, nothing_used.released) == ("released", 60)
        with pytest.raises(rpc.RemoteError) as err:
            await _release(nc, nats_prefix, uuid.uuid4())
    assert err.value.code == "reservation_not_found"
    assert (await counters(committed, user.id))["creators"] == 40


async def _release_key(nc, prefix, user_id, key, resource="creators", amount=50):
    return await rpc.request(
        nc,
        "billing.usage.release_key",
        {"user_id": str(user_id), "resource": resource, "amount": amount, "idempotency_key": key},
        prefix=prefix,
        timeout=10,
    )


async def test_a_key_given_up_before_its_reserve_arrives_never_holds_anything(
    committed, service_settings, nc, nats_prefix
):
    user = await billing_user(committed, plan="growth", status="active")
    async with running_worker("billing", service_settings):
        gone = await _release_key(nc, nats_prefix, user.id, "late-key")
        assert (gone.status, gone.released) == ("released", 0)
        late = await _reserve(nc, nats_prefix, user.id, amount=50, key="late-key")
        again = await _release_key(nc, nats_prefix, user.id, "late-key")  # twice is harmless
    assert (late.allowed, late.reservation_id, late.code) == (False, None, "reservation_closed")
    assert again.status == "released"
    assert (await counters(committed, user.id))["creators"] == 0


async def test_giving_up_a_key_gives_back_the_hold_it_took(
    committed, service_settings, nc, nats_prefix
):
    user = await billing_user(committed, plan="growth", status="active")
    async with running_worker("billing", service_settings):
        held = await _reserve(nc, nats_prefix, user.id, amount=50, key="slow-key")
        assert held.allowed and (await counters(committed, user.id))["creators"] == 50
        gone = await _release_key(nc, nats_prefix, user.id, "slow-key")
        retried = await _reserve(nc, nats_prefix, user.id, amount=50, key="slow-key")
    assert (gone.reservation_id, gone.status, gone.released) == (
        held.reservation_id, "released", 50,
    )  # fmt: skip
    assert (retried.allowed, retried.code) == (False, "reservation_closed")
    assert (await counters(committed, user.id))["creators"] == 0
