"""SQL probes for tests: record what the engine sent, and replay a statement under EXPLAIN."""

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


async def explain(session: AsyncSession, sql: str, parameters: Any) -> str:
    """The plan Postgres picks for ``sql`` with these (already driver-ready) parameters."""
    conn = await session.connection()
    result = await conn.exec_driver_sql(f"EXPLAIN {sql}", parameters)
    return "\n".join(row[0] for row in result.all())
