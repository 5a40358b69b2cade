"""``GET /billing/usage/history``: settled usage aggregated by calendar month, in one
statement, bounded, with months without usage as zeros."""

import uuid
from datetime import UTC, datetime

import sqlalchemy as sa

from ..support.services import running_api
from .conftest import billing_user


def _month(back: int) -> tuple[datetime, str]:
    """The 15th of the month ``back`` months before this one, and its YYYY-MM."""
    now = datetime.now(UTC)
    year, month = divmod(now.year * 12 + now.month - 1 - back, 12)
    return datetime(year, month + 1, 15, tzinfo=UTC), f"{year:04d}-{month + 1:02d}"


async def _reservation(conn, user_id, resource, used, status, settled_at) -> None:
    await conn.execute(
        sa.text(
            "INSERT INTO usage_reservations (user_id, resource, amount, used_amount,"
            " idempotency_key, status, expires_at, settled_at)"
            " VALUES (:u, :r, :a, :used, :k, :s, now(), :t)"
        ),
        {"u": user_id, "r": resource, "a": max(used, 1), "used": used, "k": uuid.uuid4().hex,
         "s": status, "t": settled_at},
    )  # fmt: skip


async def test_usage_history_sums_confirmed_usage_by_month(
    committed, service_settings, signing_keys
):
    user = await billing_user(committed, plan="growth", status="active")
    other = await billing_user(committed, plan="growth", status="active")
    (this, this_key), (two_ago, two_key), (old, _) = _month(0), _month(2), _month(14)
    async with committed.begin() as conn:
        for resource, used, status, when in [
            ("campaigns", 1, "confirmed", this),
            ("campaigns", 1, "confirmed", this),
            ("creators", 40, "confirmed", this),
            ("creators", 25, "confirmed", two_ago),
            ("enrichments", 3, "confirmed", two_ago),
            ("creators", 99, "released", this),  # given back: not usage
            ("creators", 500, "confirmed", old),  # outside the window
        ]:
            await _reservation(conn, user.id, resource, used, status, when)
        await _reservation(conn, other.id, "creators", 7, "confirmed", this)
    headers = {"Authorization": f"Bearer {signing_keys.token(user.user_id)}"}
    async with running_api("billing", service_settings) as client:
        response = await client.get("/billing/usage/history?months=3", headers=headers)
        assert response.status_code == 200, response.text
        months = response.json()["months"]
        assert [m["month"] for m in months] == [this_key, _month(1)[1], two_key]
        assert months[0] == {"month": this_key, "campaigns": 2, "creators": 40, "enrichments": 0}
        assert months[1]["creators"] == months[1]["campaigns"] == 0
        assert (months[2]["creators"], months[2]["enrichments"]) == (25, 3)
        default = (await client.get("/billing/usage/history", headers=headers)).json()
        assert len(default["months"]) == 12
        for bad in ("0", "37", "x"):
            refused = await client.get(f"/billing/usage/history?months={bad}", headers=headers)
            assert refused.status_code == 422 and refused.json()["code"] == "validation_error"
        assert (await client.get("/billing/usage/history")).status_code == 401
