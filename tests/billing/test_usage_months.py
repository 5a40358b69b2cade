"""``billing_usage_months``: the per-user per-UTC-month settled usage behind the usage history
follows every way reservations are written (reserve, confirm, partial use, release, expiry,
deletes, bulk inserts, the user's purge and deletion), buckets by the UTC month of
``settled_at``, stays exact under concurrent settles, and answers the history as the recount
over the reservations does."""

import asyncio
import random
import uuid
from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from services.billing.repository import AccountRepository, usage_history
from services.billing.service import usage
from shared.db import make_engine, session_factory, transaction
from shared.events.catalogue import UsageReleaseRequest, UsageReserveRequest
from shared.models import BillingUsageMonth
from shared.models.enums import UsageResource
from tooling.perf.analyze import MONTHS_DRIFT

from .conftest import billing_user

RESOURCES = [r.value for r in UsageResource]

# What the history answered when it summed the reservations themselves: the reference the
# aggregate must reproduce.
RECOUNT = sa.text(f"""
WITH bounds AS (SELECT date_trunc('month', now() AT TIME ZONE 'UTC') AS this_month),
months AS (
  SELECT generate_series(this_month - make_interval(months => :months - 1), this_month,
                         interval '1 month') AS month
  FROM bounds
),
used AS (
  SELECT date_trunc('month', r.settled_at AT TIME ZONE 'UTC') AS month,
         {", ".join(f"coalesce(sum(r.used_amount) FILTER (WHERE r.resource = '{r}'), 0) AS {r}"
                    for r in RESOURCES)}
  FROM usage_reservations r, bounds
  WHERE r.user_id = :uid AND r.status = 'confirmed'
    AND r.settled_at >= (bounds.this_month - make_interval(months => :months - 1))
                        AT TIME ZONE 'UTC'
  GROUP BY 1
)
SELECT to_char(m.month, 'YYYY-MM') AS month,
       {", ".join(f"coalesce(u.{r}, 0)::bigint AS {r}" for r in RESOURCES)}
FROM months m LEFT JOIN used u ON u.month = m.month
ORDER BY m.month DESC
""")  # fmt: skip


async def drift(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return (await conn.execute(sa.text(MONTHS_DRIFT))).scalar_one()


async def months(engine: AsyncEngine, user_id: uuid.UUID) -> dict[date, tuple[int, ...]]:
    """The user's rows as {month: (campaigns, creators, enrichments)}, zero rows left out."""
    columns = [getattr(BillingUsageMonth, r) for r in RESOURCES]
    async with engine.connect() as conn:
        rows = await conn.execute(
            sa.select(BillingUsageMonth.month, *columns).where(BillingUsageMonth.user_id == user_id)
        )
        return {r[0]: tuple(r[1:]) for r in rows if any(r[1:])}


def month_of(moment: datetime) -> date:
    return moment.astimezone(UTC).date().replace(day=1)


async def insert(conn, user_id, resource, used, status, settled_at, amount=None) -> uuid.UUID:
    return await conn.scalar(
        sa.text(
            "INSERT INTO usage_reservations (user_id, resource, amount, used_amount,"
            " idempotency_key, status, expires_at, settled_at)"
            " VALUES (:u, :r, :a, :used, :k, :s, now() + interval '1 hour', :t) RETURNING id"
        ),
        {"u": user_id, "r": resource, "a": amount or max(used or 0, 1), "used": used,
         "k": uuid.uuid4().hex, "s": status, "t": settled_at},
    )  # fmt: skip


async def test_aggregate_follows_every_write_path(committed):
    user = await billing_user(committed, plan="growth", status="active")
    other = await billing_user(committed, plan="growth", status="active")
    factory = session_factory(committed)
    this = month_of(datetime.now(UTC))

    async def reserve(amount: int, resource: str = "creators") -> uuid.UUID:
        request = UsageReserveRequest(user_id=user.id, resource=resource, amount=amount,
                                      idempotency_key=uuid.uuid4().hex)  # fmt: skip
        async with transaction(factory) as session:
            reply = await usage.reserve(session, request)
        assert reply.allowed, reply
        return reply.reservation_id

    async def release(reservation_id: uuid.UUID, used: int) -> None:
        async with transaction(factory) as session:
            await usage.release(session, UsageReleaseRequest(reservation_id=reservation_id,
                                                             used_amount=used))  # fmt: skip

    # Holds count nothing; a full confirm, a partial use and a release settle as they should.
    held = [await reserve(50) for _ in range(3)] + [await reserve(1, "campaigns")]
    assert await months(committed, user.id) == {}
    await release(held[0], 50)
    await release(held[1], 20)
    await release(held[2], 0)  # released: nothing used
    await release(held[3], 1)
    await release(held[0], 50)  # the same settle again changes nothing
    assert await months(committed, user.id) == {this: (1, 70, 0)}
    assert await drift(committed) == 0

    # Expiry gives the hold back and counts nothing; a late release of it that reports usage
    # confirms that usage.
    late = await reserve(30)
    async with committed.begin() as conn:
        await conn.execute(
            sa.text("UPDATE usage_reservations SET expires_at = now() - interval '1 s'"
                    " WHERE id = :id"), {"id": late}
        )  # fmt: skip
    async with transaction(factory) as session:
        assert await usage.expire_reservations(session) == 1
    assert await months(committed, user.id) == {this: (1, 70, 0)}
    await release(late, 5)
    assert await months(committed, user.id) == {this: (1, 75, 0)}

    # A bulk insert (one statement) across months and statuses, then a bulk delete.
    old = datetime.now(UTC).replace(day=10) - timedelta(days=62)
    async with committed.begin() as conn:
        await conn.execute(
            sa.text(
                "INSERT INTO usage_reservations (user_id, resource, amount, used_amount,"
                " idempotency_key, status, expires_at, settled_at)"
                " SELECT :u, CASE WHEN g % 2 = 0 THEN 'enrichments' ELSE 'creators' END, 10, 4,"
                " 'bulk' || g, CASE WHEN g % 5 = 0 THEN 'released' ELSE 'confirmed' END,"
                " now(), CASE WHEN g <= 10 THEN :old ELSE now() END"
                " FROM generate_series(1, 20) g"
            ),
            {"u": user.id, "old": old},
        )
        await insert(conn, other.id, "creators", 9, "confirmed", datetime.now(UTC))
    # g 1..10 at ``old``: confirmed odd (1,3,7,9) creators 16, even (2,4,6,8) enrichments 16;
    # g 11..20 now: odd (11,13,17,19) creators 16, even (12,14,16,18) enrichments 16.
    assert await months(committed, user.id) == {this: (1, 91, 16), month_of(old): (0, 16, 16)}
    async with committed.begin() as conn:
        await conn.execute(
            sa.text("DELETE FROM usage_reservations WHERE user_id = :u AND settled_at = :old"),
            {"u": user.id, "old": old},
        )
    assert await months(committed, user.id) == {this: (1, 91, 16)}
    assert await months(committed, other.id) == {this: (0, 9, 0)}
    assert await drift(committed) == 0

    # A confirmed row's amount, status or resource changing moves its contribution.
    async with committed.begin() as conn:
        await conn.execute(
            sa.text("UPDATE usage_reservations SET used_amount = 40 WHERE id = :id"),
            {"id": held[1]},
        )
        await conn.execute(
            sa.text("UPDATE usage_reservations SET status = 'released' WHERE id = :id"),
            {"id": held[3]},
        )
    assert await months(committed, user.id) == {this: (0, 111, 16)}
    assert await drift(committed) == 0

    # The purge of the user's billing rows takes the aggregate too; a deleted user's go with it.
    async with transaction(factory) as session:
        await AccountRepository(session).purge(user.id)
    assert await months(committed, user.id) == {}
    async with committed.begin() as conn:
        await conn.execute(sa.text("DELETE FROM users WHERE id = :u"), {"u": other.id})
    async with committed.connect() as conn:
        left = await conn.scalar(sa.text("SELECT count(*) FROM billing_usage_months"))
    assert left == 0
    assert await drift(committed) == 0


async def test_months_are_utc_calendar_months_of_settled_at(committed):
    user = await billing_user(committed, plan="growth", status="active")
    before = datetime(2026, 11, 30, 23, 30, tzinfo=UTC)
    after = datetime(2026, 12, 1, 0, 30, tzinfo=UTC)  # still November 30 in Los Angeles
    async with committed.begin() as conn:
        await conn.execute(sa.text("SET LOCAL TimeZone = 'America/Los_Angeles'"))
        first = await insert(conn, user.id, "creators", 3, "confirmed", before)
        await insert(conn, user.id, "creators", 4, "confirmed", after)
    assert await months(committed, user.id) == {date(2026, 11, 1): (0, 3, 0),
                                                 date(2026, 12, 1): (0, 4, 0)}  # fmt: skip
    # A settlement moved across the boundary moves its amount to the other month.
    async with committed.begin() as conn:
        await conn.execute(
            sa.text("UPDATE usage_reservations SET settled_at = :t WHERE id = :id"),
            {"t": after + timedelta(hours=1), "id": first},
        )
    assert await months(committed, user.id) == {date(2026, 12, 1): (0, 7, 0)}
    # A hold reserved in one month and confirmed in the next counts in the month it settled.
    async with committed.begin() as conn:
        held = await insert(conn, user.id, "enrichments", None, "reserved", None, amount=5)
        await conn.execute(
            sa.text("UPDATE usage_reservations SET created_at = :t WHERE id = :id"),
            {"t": before, "id": held},
        )
        await conn.execute(
            sa.text("UPDATE usage_reservations SET status = 'confirmed', used_amount = 5,"
                    " settled_at = :t WHERE id = :id"), {"t": after, "id": held}
        )  # fmt: skip
    assert await months(committed, user.id) == {date(2026, 12, 1): (0, 7, 5)}
    assert await drift(committed) == 0


async def test_concurrent_settles_of_one_user_and_month_stay_exact(committed, database_url):
    user = await billing_user(committed, plan="growth", status="active")
    engine = make_engine(database_url, pool_size=20, application_name="scout-tests-months")
    factory = session_factory(engine)
    try:
        ids = []
        for i in range(60):
            request = UsageReserveRequest(user_id=user.id, resource="creators", amount=10,
                                          idempotency_key=f"settle-{i}")  # fmt: skip
            async with transaction(factory) as session:
                ids.append((await usage.reserve(session, request)).reservation_id)

        async def settle(reservation_id: uuid.UUID, used: int) -> None:
            async with transaction(factory) as session:
                await usage.release(session, UsageReleaseRequest(reservation_id=reservation_id,
                                                                 used_amount=used))  # fmt: skip

        used = [1 + i % 10 for i in range(60)]
        # Every settle twice at once: the second finds it settled and adds nothing.
        calls = [settle(r, u) for r, u in zip(ids, used, strict=True)] * 2
        random.Random(7).shuffle(calls)
        await asyncio.gather(*calls)
    finally:
        await engine.dispose()
    assert await months(committed, user.id) == {month_of(datetime.now(UTC)): (0, sum(used), 0)}
    assert await drift(committed) == 0


async def test_history_answers_as_the_recount_over_reservations(committed):
    user = await billing_user(committed, plan="growth", status="active")
    rng = random.Random(11)
    now = datetime.now(UTC)
    async with committed.begin() as conn:
        for _ in range(300):
            # From 40 months back to a month ahead, any status: outside the window, future
            # settlements and unconfirmed rows must count as the recount counts them.
            settled = now - timedelta(days=rng.uniform(-31, 40 * 31))
            status = rng.choice(["confirmed", "confirmed", "confirmed", "released", "expired"])
            await insert(conn, user.id, rng.choice(RESOURCES), rng.randint(0, 50), status,
                         settled, amount=50)  # fmt: skip
    for window in (1, 3, 12, 36):
        async with committed.connect() as conn:
            expected = [dict(r._mapping) for r in await conn.execute(
                RECOUNT, {"uid": user.id, "months": window})]  # fmt: skip
        async with transaction(session_factory(committed)) as session:
            assert await usage_history(session, user.id, window) == expected
        assert len(expected) == window and any(m["creators"] for m in expected)
