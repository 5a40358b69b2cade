"""Per-user rate limits that hold across API replicas: GCRA in one conditional upsert.

Each key (``<service>:<action>:<clerk user id>``) stores its *theoretical arrival time*
(``tat``). A request costs one emission interval ``T = period / rate``; it is allowed while the
new ``tat`` stays within ``burst * T`` of now. The upsert takes the row lock, so concurrent
requests queue on it and exactly the budget passes; a refused request changes nothing and learns
when to retry. The check commits on its own connection: budget spent by a request that later
fails stays spent, which is what a limit on attempts means.
"""

import math
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.auth import Principal
from shared.db import DriverQuery
from shared.errors import DependencyUnavailable, RateLimited
from shared.web import CurrentUser, database_gate, report_failure
from shared.web.openapi import raises

_DECIDE = sa.text(
    """
    INSERT INTO rate_limits AS r (key, tat) VALUES (:key, now() + :t)
    ON CONFLICT (key) DO UPDATE SET tat = greatest(r.tat, now()) + :t
    WHERE greatest(r.tat, now()) + :t <= now() + :window
    RETURNING r.tat
    """
)
_RETRY_AFTER = sa.text(
    """
    SELECT extract(epoch FROM greatest(tat, now()) + :t - now() - :window)
    FROM rate_limits WHERE key = :key
    """
)

_DECIDE_DRIVER = DriverQuery(_DECIDE)
_RETRY_AFTER_DRIVER = DriverQuery(_RETRY_AFTER)


@dataclass(frozen=True)
class Limit:
    """``rate`` requests per ``period``, of which up to ``burst`` may come at once."""

    rate: int
    period: timedelta = timedelta(minutes=1)
    burst: int | None = None  # default: the whole period's budget at once

    @property
    def interval(self) -> timedelta:
        return self.period / self.rate

    @property
    def window(self) -> timedelta:
        return self.interval * (self.burst or self.rate)


async def hit(engine: AsyncEngine, key: str, limit: Limit) -> float | None:
    """Spend one request of ``key``'s budget: ``None`` when allowed, else seconds to wait.

    The decision is one upsert, its own transaction: it runs in autocommit on the driver (the
    engine's ``ReadPool``), with no ``BEGIN``/``COMMIT`` round trips around it. Only a refused
    request asks, in a second statement, how long to wait."""
    params = {"key": key, "t": limit.interval, "window": limit.window}
    if await _DECIDE_DRIVER.autocommit(engine, params) is not None:
        return None
    wait = await _RETRY_AFTER_DRIVER.autocommit(engine, params)
    return max(float(wait[0] if wait and wait[0] is not None else 0), 0.001)


async def enforce(engine: AsyncEngine, key: str, limit: Limit) -> None:
    """:func:`hit`, raising 429 ``rate_limited`` with ``Retry-After`` when over budget."""
    wait = await hit(engine, key, limit)
    if wait is not None:
        seconds = max(1, math.ceil(wait))
        raise RateLimited(
            f"Too many requests; retry in {seconds} s.",
            headers={"Retry-After": str(seconds)},
            extra={"retry_after": seconds},
        )


def rate_limit(action: str, setting: str) -> Any:
    """A dependency limiting ``action`` per caller; the rate is ``settings.<setting>`` (requests
    per minute, 0 = unlimited). For a route's ``dependencies=[...]``: it runs before the route's
    other dependencies, so an over-budget request costs no further statement."""

    @raises(RateLimited, DependencyUnavailable)
    async def dependency(request: Request, principal: CurrentUser) -> Principal:
        per_minute = getattr(request.app.state.settings, setting)
        if per_minute > 0:
            health = database_gate(request)  # 503 at once while the database is known away
            key = f"{request.app.state.service}:{action}:{principal.clerk_user_id}"
            try:
                await enforce(request.app.state.engine, key, Limit(per_minute))
            except Exception as exc:
                report_failure(health, exc)
                raise
        return principal

    return Depends(dependency)


def per_user(action: str, setting: str) -> Any:
    """:func:`rate_limit` as a parameter type that also hands the route the caller."""
    return Annotated[Principal, rate_limit(action, setting)]
