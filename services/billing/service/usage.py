"""Usage quota: reservations that hold under any concurrency (the one implementation).

How the counters work (decided once, used everywhere):

* ``user_usage`` counters (``usage_campaigns_current``, ``usage_creators_current_month``,
  ``enrichments_current_month``) count **confirmed usage plus live holds**.
* :func:`reserve` IS the increment: one conditional ``UPDATE … SET c = c + n WHERE limit = -1 OR
  c + n <= limit`` on the user's row (``UsageRepository.charge``).
* :func:`release` settles a hold: ``used_amount`` stays counted (status ``confirmed``) and the rest
  is given back (``released`` when nothing was used). Nothing else adds usage, so
  ``campaign.campaign.created`` does not increment again (the campaign service confirms the
  reservation it took); ``campaign.campaign.deleted`` gives one campaign back.
* Holds not settled by ``expires_at`` are given back by :func:`expire_reservations` (scheduled),
  so a crashed caller never leaks quota.
* A caller that stopped waiting for a reserve's answer gives the key up (:func:`release_key`):
  a hold that committed is given back at once, and a reserve still on its way finds the key
  taken by a released tombstone and holds nothing. A key whose hold was given back (released,
  expired) is never reserved again: the answer says ``reservation_closed``. A late release of an expired hold that reports usage
  still charges that usage (the work happened), without a limit check.
* The monthly reset sets the creators/enrichments counters to what is still held, so in-flight
  holds stay counted and their later release cannot drive a counter negative.

Limits: the user's per-user override (``user_usage.plan_*_limit``) when set, else the plan's
limit, else 0 (no plan = zero allowance). ``-1`` means unlimited. A denial says which: a user
with no plan and no allowance is told ``no_active_plan`` (they need a plan, not an upgrade);
otherwise the resource's ``*_limit_reached``.
"""

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from shared.events.catalogue import (
    UsageReleaseKeyRequest,
    UsageReleaseReply,
    UsageReleaseRequest,
    UsageReserveReply,
    UsageReserveRequest,
)
from shared.models.enums import ReservationStatus, UsageResource
from shared.quota import NO_ACTIVE_PLAN

from ..errors import ReservationNotFound
from ..repository import UsageRepository

# The answer to a reserve whose key was given up before: that operation must start afresh.
RESERVATION_CLOSED = "reservation_closed"
CLOSED = {ReservationStatus.released, ReservationStatus.expired}
LIMIT_CODE = {
    UsageResource.campaigns: "campaign_limit_reached",
    UsageResource.creators: "creators_limit_reached",
    UsageResource.enrichments: "enrichments_limit_reached",
}


async def reserve(session: AsyncSession, request: UsageReserveRequest) -> UsageReserveReply:
    """Hold ``amount`` of ``resource`` for ``user_id`` if the limit allows, in the caller's transaction.

    The same ``idempotency_key`` returns the same reservation (and charges once, even when
    both requests run at the same moment: the second waits on the unique index).
    """
    repo = UsageRepository(session)
    resource = UsageResource(request.resource)
    new_id = uuid.uuid4()
    expires_at = datetime.now(UTC) + timedelta(seconds=request.ttl_seconds)
    if not await repo.insert_reservation(
        new_id, request.user_id, resource, request.amount, request.idempotency_key, expires_at
    ):
        return await _existing(repo, request)
    charged = await repo.charge(request.user_id, resource, request.amount)
    if charged is not None:
        used, limit = charged
        return UsageReserveReply(allowed=True, reservation_id=new_id, used=used, limit=limit)
    # Denied: the key must stay free for a later attempt (after an upgrade, say).
    await repo.delete_reservation(new_id)
    current = (await repo.usage_of(request.user_id))[resource]
    no_plan = current.limit == 0 and not await repo.has_plan(request.user_id)
    return UsageReserveReply(
        allowed=False,
        used=current.used,
        limit=current.limit,
        code=NO_ACTIVE_PLAN if no_plan else LIMIT_CODE[resource],
    )


async def _existing(repo: UsageRepository, request: UsageReserveRequest) -> UsageReserveReply:
    row = await repo.reservation_by_key(request.user_id, request.idempotency_key)
    if row is None:  # no usage row: an unknown (or not yet provisioned) user has no plan
        return UsageReserveReply(allowed=False, used=0, limit=0, code=NO_ACTIVE_PLAN)
    current = (await repo.usage_of(request.user_id))[UsageResource(row["resource"])]
    if row["status"] in CLOSED:  # given up (or expired) before: never a hold again
        return UsageReserveReply(
            allowed=False, used=current.used, limit=current.limit, code=RESERVATION_CLOSED
        )
    return UsageReserveReply(
        allowed=True, reservation_id=row["id"], used=current.used, limit=current.limit
    )


async def release(session: AsyncSession, request: UsageReleaseRequest) -> UsageReleaseReply:
    """Settle a hold: ``used_amount`` stays counted, the rest is given back. Idempotent."""
    repo = UsageRepository(session)
    row = await repo.lock_reservation(request.reservation_id)
    if row is None:
        raise ReservationNotFound(f"No reservation {request.reservation_id}.")
    used = min(request.used_amount, row["amount"])
    if row["status"] == ReservationStatus.reserved:
        delta = -(row["amount"] - used)  # give back the unused part
    elif row["status"] == ReservationStatus.expired and row["used_amount"] is None and used > 0:
        delta = used  # the hold was already given back, but the work happened: charge it
    else:  # already settled: the same answer again
        return UsageReleaseReply(
            reservation_id=request.reservation_id,
            status=row["status"],
            released=row["amount"] - (row["used_amount"] or 0),
        )
    status = ReservationStatus.confirmed if used > 0 else ReservationStatus.released
    await repo.settle(request.reservation_id, used, status.value)
    if delta:
        await repo.adjust(row["user_id"], UsageResource(row["resource"]), delta)
    return UsageReleaseReply(
        reservation_id=request.reservation_id, status=status, released=row["amount"] - used
    )


async def release_key(session: AsyncSession, request: UsageReleaseKeyRequest) -> UsageReleaseReply:
    """Give up the hold asked with ``request.idempotency_key``: given back if it exists, a
    released tombstone in its place if it does not yet (so a late reserve holds nothing)."""
    repo = UsageRepository(session)
    tombstone_id = uuid.uuid4()
    resource = UsageResource(request.resource)
    if await repo.insert_tombstone(
        tombstone_id, request.user_id, resource, request.amount, request.idempotency_key
    ):
        return UsageReleaseReply(
            reservation_id=tombstone_id, status=ReservationStatus.released, released=0
        )
    row = await repo.reservation_by_key(request.user_id, request.idempotency_key)
    if row is None:  # no usage row: an unknown user holds nothing
        raise ReservationNotFound(f"No reservation {request.idempotency_key!r}.")
    return await release(session, UsageReleaseRequest(reservation_id=row["id"], used_amount=0))


async def expire_reservations(session: AsyncSession, *, batch: int = 1000) -> int:
    """Give back every hold past its deadline (one statement per batch); returns how many."""
    repo = UsageRepository(session)
    total = 0
    while True:
        n = await repo.expire_batch(batch)
        total += n
        if not n or n < batch:
            return total


async def reset_monthly_usage(session: AsyncSession, *, now: datetime | None = None) -> int:
    """Reset creators/enrichments of every user whose month is over, on their own reset date.

    Counters become what is still held (live reservations stay counted); the reset date moves
    forward by whole months, so it keeps the user's anniversary and never drifts.
    """
    now = now or datetime.now(UTC)
    repo = UsageRepository(session)
    due = await repo.lock_due_for_reset(now)
    if not due:
        return 0
    # A new statement (new snapshot) after the locks: every committed hold is visible.
    await repo.reset(due, now)
    return len(due)


async def give_back_campaign(session: AsyncSession, user_id: uuid.UUID) -> None:
    """A campaign was deleted: it no longer counts against "campaigns at once"."""
    await UsageRepository(session).adjust(user_id, UsageResource.campaigns, -1)
