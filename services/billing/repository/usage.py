"""Every SQL statement about usage counters, reservations and settled usage by month
(``user_usage``, ``usage_reservations``, ``billing_usage_months``); the counting rules they
implement are in ``service/usage.py``.

Statements that differ only by resource (its counter column, its limit expression) are built
once per resource at import, so no SQL text is assembled per call.
"""

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import DriverQuery
from shared.models.enums import UsageResource

COUNTER = {
    UsageResource.campaigns: "usage_campaigns_current",
    UsageResource.creators: "usage_creators_current_month",
    UsageResource.enrichments: "enrichments_current_month",
}
# SQL for a resource's effective limit, over ``user_usage u LEFT JOIN subscription_plans p``:
# the per-user override, else the plan's limit, else 0 (no plan = no allowance); -1 = unlimited.
LIMIT_SQL = {
    UsageResource.campaigns: "coalesce(u.plan_campaigns_limit, p.campaigns_limit, 0)",
    UsageResource.creators: "coalesce(u.plan_creators_limit, p.creators_limit, 0)",
    UsageResource.enrichments: "coalesce(p.enrichments_limit, 0)",
}
PLAN_JOIN = (
    "FROM user_usage u"
    " LEFT JOIN user_subscriptions s ON s.user_id = u.user_id"
    " LEFT JOIN subscription_plans p ON p.plan_key = s.current_plan"
)


def _held(resource: UsageResource) -> str:
    """What ``resource`` has on hold for ``u.user_id`` (live reservations)."""
    return (
        "(SELECT coalesce(sum(amount), 0) FROM usage_reservations h WHERE h.user_id = u.user_id"
        f" AND h.status = 'reserved' AND h.resource = '{resource.value}')"
    )


# ``<resource>_used``, ``<resource>_limit``, ``<resource>_reserved`` for every resource, over
# PLAN_JOIN: also read by the billing status statement (AccountRepository.status).
USAGE_COLUMNS = ", ".join(
    f"u.{COUNTER[r]} AS {r.value}_used, {LIMIT_SQL[r]} AS {r.value}_limit,"
    f" {_held(r)} AS {r.value}_reserved"
    for r in UsageResource
)

_USAGE_OF = sa.text(f"SELECT {USAGE_COLUMNS} {PLAN_JOIN} WHERE u.user_id = :uid")

_INSERT_RESERVATION = sa.text(
    "INSERT INTO usage_reservations"
    " (id, user_id, resource, amount, idempotency_key, status, expires_at)"
    " SELECT :id, u.user_id, :resource, :amount, :key, 'reserved', :expires"
    " FROM user_usage u WHERE u.user_id = :uid"
    " ON CONFLICT (user_id, idempotency_key) DO NOTHING RETURNING id"
)

# The conditional increment: Postgres re-checks the WHERE against the newest row version when
# concurrent reservers queue on the row lock, so no check-then-update window exists.
_CHARGE = {
    r: sa.text(
        f"UPDATE user_usage u SET {COUNTER[r]} = u.{COUNTER[r]} + :n"
        " FROM user_usage x"
        " LEFT JOIN user_subscriptions s ON s.user_id = x.user_id"
        " LEFT JOIN subscription_plans p ON p.plan_key = s.current_plan"
        " WHERE x.id = u.id AND u.user_id = :uid"
        f" AND ({LIMIT_SQL[r]} = -1 OR u.{COUNTER[r]} + :n <= {LIMIT_SQL[r]})"
        f" RETURNING u.{COUNTER[r]} AS used, {LIMIT_SQL[r]} AS lim"
    )
    for r in UsageResource
}

_HAS_PLAN = sa.text("SELECT current_plan IS NOT NULL FROM user_subscriptions WHERE user_id = :uid")
# A key given up before (or while) its reserve arrives: a released hold of nothing, so the
# reserve that comes later finds the key taken and charges nothing.
_INSERT_TOMBSTONE = sa.text(
    "INSERT INTO usage_reservations (id, user_id, resource, amount, used_amount,"
    " idempotency_key, status, expires_at, settled_at)"
    " SELECT :id, u.user_id, :resource, :amount, 0, :key, 'released', now(), now()"
    " FROM user_usage u WHERE u.user_id = :uid"
    " ON CONFLICT (user_id, idempotency_key) DO NOTHING RETURNING id"
)

_DELETE_RESERVATION = sa.text("DELETE FROM usage_reservations WHERE id = :id")

_RESERVATION_BY_KEY = sa.text(
    "SELECT id, resource, status FROM usage_reservations"
    " WHERE user_id = :uid AND idempotency_key = :key"
)

_LOCK_RESERVATION = sa.text(
    "SELECT user_id, resource, amount, used_amount, status"
    " FROM usage_reservations WHERE id = :id FOR UPDATE"
)

_SETTLE = sa.text(
    "UPDATE usage_reservations SET used_amount = :used, status = :status,"
    " settled_at = now() WHERE id = :id"
)

_ADJUST = {
    r: sa.text(
        f"UPDATE user_usage SET {COUNTER[r]} = greatest(0, {COUNTER[r]} + :d) WHERE user_id = :uid"
    )
    for r in UsageResource
}

_EXPIRE_SUMS = ", ".join(
    f"coalesce(sum(amount) FILTER (WHERE resource = '{r.value}'), 0) AS {r.value}"
    for r in UsageResource
)
_EXPIRE_SETS = ", ".join(
    f"{COUNTER[r]} = greatest(0, {COUNTER[r]} - g.{r.value})" for r in UsageResource
)
# One batch of holds past their deadline, given back in one statement.
_EXPIRE_BATCH = sa.text(
    "WITH due AS (SELECT id FROM usage_reservations WHERE status = 'reserved'"
    " AND expires_at < now() ORDER BY expires_at LIMIT :batch FOR UPDATE SKIP LOCKED),"
    " gone AS (UPDATE usage_reservations r SET status = 'expired', settled_at = now()"
    " FROM due WHERE r.id = due.id AND r.status = 'reserved'"
    " RETURNING r.user_id, r.resource, r.amount),"
    f" g AS (SELECT user_id, {_EXPIRE_SUMS}, count(*) AS n FROM gone GROUP BY user_id),"
    f" fix AS (UPDATE user_usage u SET {_EXPIRE_SETS} FROM g WHERE u.user_id = g.user_id)"
    " SELECT coalesce(sum(n), 0) FROM g"
)

_DUE_FOR_RESET = sa.text(
    "SELECT user_id FROM user_usage WHERE usage_reset_date + interval '1 month' <= :now"
    " ORDER BY user_id FOR UPDATE"
)

# Monthly counters become what is still held; the reset date moves by whole months, so it keeps
# the user's anniversary and never drifts.
_RESET = sa.text(
    f"UPDATE user_usage u SET {COUNTER[UsageResource.creators]} = {_held(UsageResource.creators)},"
    f" {COUNTER[UsageResource.enrichments]} = {_held(UsageResource.enrichments)},"
    " usage_reset_date = u.usage_reset_date + make_interval(months =>"
    " (extract(year FROM age(:now, u.usage_reset_date)) * 12"
    " + extract(month FROM age(:now, u.usage_reset_date)))::int)"
    " WHERE u.user_id = ANY(:ids)"
)


@dataclass(frozen=True)
class Usage:
    used: int  # confirmed usage plus live holds
    limit: int  # -1 = unlimited
    reserved: int  # the part of ``used`` still held by operations in flight


def usage_from(row: Mapping[str, Any] | None) -> dict[UsageResource, Usage]:
    """Every resource's :class:`Usage` from a row holding ``USAGE_COLUMNS`` (zeros for none)."""
    if row is None:
        return {r: Usage(0, 0, 0) for r in UsageResource}
    return {
        r: Usage(
            int(row[f"{r.value}_used"]),
            int(row[f"{r.value}_limit"]),
            int(row[f"{r.value}_reserved"]),
        )
        for r in UsageResource
    }


class UsageRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def usage_of(self, user_id: uuid.UUID) -> dict[UsageResource, Usage]:
        """Every resource's counter, effective limit and live holds for one user (one statement)."""
        row = (await self.session.execute(_USAGE_OF, {"uid": user_id})).mappings().first()
        return usage_from(row)

    async def insert_reservation(
        self,
        reservation_id: uuid.UUID,
        user_id: uuid.UUID,
        resource: UsageResource,
        amount: int,
        key: str,
        expires_at: datetime,
    ) -> bool:
        """Insert a hold unless the key exists (or the user has no usage row): True if inserted.

        The same key twice, even at the same moment, inserts once: the second waits on the
        unique index ``(user_id, idempotency_key)`` and then inserts nothing.
        """
        inserted = await self.session.scalar(
            _INSERT_RESERVATION,
            {
                "id": reservation_id,
                "uid": user_id,
                "resource": resource.value,
                "amount": amount,
                "key": key,
                "expires": expires_at,
            },
        )
        return inserted is not None

    async def charge(
        self, user_id: uuid.UUID, resource: UsageResource, amount: int
    ) -> tuple[int, int] | None:
        """Add ``amount`` to the counter if the limit allows: ``(used, limit)``, or None."""
        row = (
            (await self.session.execute(_CHARGE[resource], {"uid": user_id, "n": amount}))
            .mappings()
            .first()
        )
        return None if row is None else (row["used"], row["lim"])

    async def has_plan(self, user_id: uuid.UUID) -> bool:
        """Whether the user is on a plan at all (False for no subscription row)."""
        return bool(await self.session.scalar(_HAS_PLAN, {"uid": user_id}))

    async def insert_tombstone(
        self,
        tombstone_id: uuid.UUID,
        user_id: uuid.UUID,
        resource: UsageResource,
        amount: int,
        key: str,
    ) -> bool:
        """Take ``key`` with a released hold unless a reservation holds it: True if inserted.

        Race: a reserve with the same key in flight. Both inserts meet on the unique index, so
        exactly one of them has the key: the later one waits for the first to commit.
        """
        params = {"id": tombstone_id, "uid": user_id, "resource": resource.value,
                  "amount": amount, "key": key}  # fmt: skip
        return await self.session.scalar(_INSERT_TOMBSTONE, params) is not None

    async def delete_reservation(self, reservation_id: uuid.UUID) -> None:
        await self.session.execute(_DELETE_RESERVATION, {"id": reservation_id})

    async def reservation_by_key(self, user_id: uuid.UUID, key: str) -> Mapping[str, Any] | None:
        params = {"uid": user_id, "key": key}
        return (await self.session.execute(_RESERVATION_BY_KEY, params)).mappings().first()

    async def lock_reservation(self, reservation_id: uuid.UUID) -> Mapping[str, Any] | None:
        params = {"id": reservation_id}
        return (await self.session.execute(_LOCK_RESERVATION, params)).mappings().first()

    async def settle(self, reservation_id: uuid.UUID, used: int, status: str) -> None:
        params = {"id": reservation_id, "used": used, "status": status}
        await self.session.execute(_SETTLE, params)

    async def adjust(self, user_id: uuid.UUID, resource: UsageResource, delta: int) -> None:
        """Move a counter by ``delta``, never below zero."""
        await self.session.execute(_ADJUST[resource], {"d": delta, "uid": user_id})

    async def expire_batch(self, batch: int) -> int:
        """Give back up to ``batch`` holds past their deadline; how many were expired."""
        return int(await self.session.scalar(_EXPIRE_BATCH, {"batch": batch}) or 0)

    async def lock_due_for_reset(self, now: datetime) -> list[uuid.UUID]:
        """Users whose usage month is over, their usage rows locked (in id order)."""
        return list((await self.session.scalars(_DUE_FOR_RESET, {"now": now})).all())

    async def reset(self, user_ids: list[uuid.UUID], now: datetime) -> None:
        await self.session.execute(_RESET, {"now": now, "ids": user_ids})


_HISTORY_COLUMNS = ", ".join(
    f"coalesce(u.{r.value}, 0)::bigint AS {r.value}" for r in UsageResource
)
# Settled usage by calendar month (UTC), the last :months months, empty months as zeros: one
# statement reading at most :months rows of ``billing_usage_months`` (kept by triggers on
# usage_reservations) through its unique (user_id, month) index, whatever the user settled.
HISTORY = sa.text(f"""
SELECT to_char(m.month, 'YYYY-MM') AS month, {_HISTORY_COLUMNS}
FROM generate_series(date_trunc('month', now() AT TIME ZONE 'UTC') - make_interval(months =>
                     :months - 1), date_trunc('month', now() AT TIME ZONE 'UTC'),
                     interval '1 month') AS m(month)
LEFT JOIN billing_usage_months u ON u.user_id = :uid AND u.month = m.month::date
ORDER BY m.month DESC
""")


# Run on the driver connection (``shared.db.DriverQuery``): at a fraction of a millisecond, the
# statement is cheaper than SQLAlchemy's result handling around it.
_HISTORY_DRIVER = DriverQuery(HISTORY)
_HISTORY_FIELDS = ("month", *(r.value for r in UsageResource))


async def usage_history(session: AsyncSession, user_id: uuid.UUID, months: int) -> list[dict]:
    """The user's confirmed usage per resource for each of the last ``months`` calendar months
    (UTC), newest first, months without usage as zeros."""
    rows = await _HISTORY_DRIVER.all(session, {"uid": user_id, "months": months})
    return [dict(zip(_HISTORY_FIELDS, row, strict=True)) for row in rows]
