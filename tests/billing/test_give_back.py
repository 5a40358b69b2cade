"""A hold is given back even when billing cannot be reached at that moment.

The hold is taken over the real RPC while billing's worker runs; then the worker is stopped
(billing restarting, or its database or NATS away: nobody answers) and the caller gives the
hold back. Nothing answers, so the caller keeps asking in the background; once a billing worker
runs again the hold is released and the counter is back, long before billing's expiry would.
"""

import uuid

import sqlalchemy as sa

from shared.models.enums import UsageResource
from shared.quota import QuotaClient

from ..support.services import running_worker
from ..support.wait import eventually
from .conftest import billing_user, counters
from .test_usage import _reserve


async def _status(engine, reservation_id) -> str:
    async with engine.connect() as conn:
        return await conn.scalar(
            sa.text("SELECT status FROM usage_reservations WHERE id = :id"), {"id": reservation_id}
        )


async def test_a_release_that_finds_billing_away_is_asked_again_until_billing_answers(
    committed, service_settings, nc, nats_prefix
):
    user = await billing_user(committed, plan="growth", status="active")
    async with running_worker("billing", service_settings):
        held = await _reserve(nc, nats_prefix, user.id, amount=10, ttl=3600)
    assert held.allowed and (await counters(committed, user.id))["creators"] == 10

    quota = QuotaClient(nc, nats_prefix, timeout=1.0)
    assert await quota.try_release(held.reservation_id, used_amount=0) is None  # nobody answers
    assert await _status(committed, held.reservation_id) == "reserved"

    async def given_back() -> bool:
        return await _status(committed, held.reservation_id) == "released"

    async with running_worker("billing", service_settings):
        await eventually(given_back, within=20)
    assert (await counters(committed, user.id))["creators"] == 0


async def test_a_give_up_while_billing_is_away_releases_the_hold_once_it_is_back(
    committed, service_settings, nc, nats_prefix
):
    user = await billing_user(committed, plan="growth", status="active")
    key = f"scraping-job:{uuid.uuid4()}"
    async with running_worker("billing", service_settings):
        held = await _reserve(nc, nats_prefix, user.id, amount=10, key=key, ttl=3600)
    assert held.allowed

    quota = QuotaClient(nc, nats_prefix, timeout=1.0)
    quota.give_up(user.id, UsageResource.creators, 10, key=key)  # as after a reserve timed out

    async def given_back() -> bool:
        return await _status(committed, held.reservation_id) == "released"

    async with running_worker("billing", service_settings):
        await eventually(given_back, within=20)
        late = await _reserve(nc, nats_prefix, user.id, amount=10, key=key)
    assert (late.allowed, late.code) == (False, "reservation_closed")  # the key stays given up
    assert (await counters(committed, user.id))["creators"] == 0
