"""Helpers for the query tests: replay what a helper executed under EXPLAIN."""

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession


class Executed:
    """Every (SQL, parameters) the engine sends, exactly as the driver receives them."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def __call__(self, conn, cursor, statement, parameters, context, executemany) -> None:
        self.calls.append((statement, parameters))

    def matching(self, fragment: str) -> tuple[str, Any]:
        found = [call for call in self.calls if fragment in call[0]]
        assert len(found) == 1, [sql for sql, _ in self.calls]
        return found[0]


@pytest.fixture
def executed(engine: AsyncEngine) -> Iterator[Executed]:
    recorder = Executed()
    sa.event.listen(engine.sync_engine, "before_cursor_execute", recorder)
    yield recorder
    sa.event.remove(engine.sync_engine, "before_cursor_execute", recorder)


async def explain(session: AsyncSession, sql: str, parameters: Any) -> str:
    """The plan Postgres picks for ``sql`` with these (already driver-ready) parameters."""
    conn = await session.connection()
    result = await conn.exec_driver_sql(f"EXPLAIN {sql}", parameters)
    return "\n".join(row[0] for row in result.all())
