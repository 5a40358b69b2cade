"""SQL probes for tests: record what the engine sent, and replay a statement under EXPLAIN."""

import json
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession


class Executed:
    """Every (SQL, parameters) the engine sends, exactly as the driver receives them."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def __call__(self, cursor, statement, parameters) -> None:
        self.calls.append((statement, parameters))

    def matching(self, fragment: str) -> tuple[str, Any]:
        found = [call for call in self.calls if fragment in call[0]]
        assert len(found) == 1, [sql for sql, _ in self.calls]
        return found[0]


async def analyzed_plan(
    session: AsyncSession, sql: str, parameters: Any, *, buffers: bool = False
) -> dict[str, Any]:
    """The top node of ``sql``'s plan as it ran (``EXPLAIN (ANALYZE, FORMAT JSON)``), with
    each node's pages read when ``buffers``."""
    conn = await session.connection()
    options = "ANALYZE, BUFFERS" if buffers else "ANALYZE"
    result = await conn.exec_driver_sql(f"EXPLAIN ({options}, FORMAT JSON) {sql}", parameters)
    value = result.scalar_one()
    return (json.loads(value) if isinstance(value, str) else value)[0]["Plan"]


async def explain(session: AsyncSession, sql: str, parameters: Any) -> str:
    """The plan Postgres picks for ``sql`` with these (already driver-ready) parameters."""
    conn = await session.connection()
    result = await conn.exec_driver_sql(f"EXPLAIN {sql}", parameters)
    return "\n".join(row[0] for row in result.all())


def touched(plan: dict[str, Any], table: str) -> int:
    """Rows the plan's nodes on ``table`` (or its indexes) produced or rechecked, over all
    their loops: an `EXPLAIN (ANALYZE, FORMAT JSON)` plan node."""
    rows = 0
    if plan.get("Relation Name") == table or table in plan.get("Index Name", ""):
        loops = plan.get("Actual Loops", 1)
        rows += (plan.get("Actual Rows", 0) + plan.get("Rows Removed by Filter", 0)) * loops
        rows += plan.get("Rows Removed by Index Recheck", 0)
    for child in plan.get("Plans", []):
        rows += touched(child, table)
    return rows
