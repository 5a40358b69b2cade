"""Every SQL statement an engine sends, seen where the driver sends it.

Statement-count tests, ``scout db perf`` and ``bench_http`` record what a request runs.
SQLAlchemy's ``before_cursor_execute`` sees only statements that go through SQLAlchemy: a read
run on the driver (``shared.db.DriverQuery``, the fast path of the hottest reads, on a session's
connection or on the engine's ``ReadPool``) would be invisible to it. So the recording sits one level down, in the psycopg cursor every connection of an engine makes (plain and server-side), so
whatever path a statement takes — ORM, Core, ``exec_driver_sql``, the driver itself — it is
seen, with the exact SQL and parameters psycopg receives.

Engines built by ``shared.db.make_engine`` are traced; ``recording(engine, hook)`` adds a hook
for one engine, ``recording(None, hook)`` for every engine. A hook is called as
``hook(cursor, statement, parameters)`` before the statement is sent (``cursor.connection`` is
the psycopg connection, e.g. for its ``autocommit``). With no hook registered a statement pays
one list check.
"""

import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import psycopg
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

Hook = Callable[[Any, str, Any], None]

# Hooks that see every traced engine's statements.
EVERY_ENGINE: list[Hook] = []
_BY_ENGINE: "weakref.WeakKeyDictionary[sa.Engine, list[Hook]]" = weakref.WeakKeyDictionary()
_CURSORS: "weakref.WeakKeyDictionary[sa.Engine, tuple[type, type]]" = weakref.WeakKeyDictionary()


def _notify(cursor: Any, hooks: list[Hook], query: Any, params: Any) -> None:
    statement = query if isinstance(query, str) else str(query)
    for hook in (*hooks, *EVERY_ENGINE):
        hook(cursor, statement, params)


class TracedCursor(psycopg.AsyncCursor):
    hooks: ClassVar[list[Hook]] = []

    async def execute(self, query, params=None, **kwargs):
        if self.hooks or EVERY_ENGINE:
            _notify(self, self.hooks, query, params)
        return await super().execute(query, params, **kwargs)

    async def executemany(self, query, params_seq, **kwargs):
        if self.hooks or EVERY_ENGINE:
            params_seq = list(params_seq)
            _notify(self, self.hooks, query, params_seq)
        return await super().executemany(query, params_seq, **kwargs)


class TracedServerCursor(psycopg.AsyncServerCursor):
    hooks: ClassVar[list[Hook]] = []

    async def execute(self, query, params=None, **kwargs):
        if self.hooks or EVERY_ENGINE:
            _notify(self, self.hooks, query, params)
        return await super().execute(query, params, **kwargs)


def trace(engine: AsyncEngine) -> AsyncEngine:
    """Make every connection of ``engine`` create traced cursors (its own hook list)."""
    hooks: list[Hook] = []
    plain = type("EngineCursor", (TracedCursor,), {"hooks": hooks})
    server = type("EngineServerCursor", (TracedServerCursor,), {"hooks": hooks})
    _CURSORS[engine.sync_engine] = plain, server

    def on_connect(dbapi_connection, _record) -> None:
        adopt(engine, dbapi_connection.driver_connection)

    sa.event.listen(engine.sync_engine, "connect", on_connect)
    _BY_ENGINE[engine.sync_engine] = hooks
    return engine


def adopt(engine: AsyncEngine, connection: psycopg.AsyncConnection) -> None:
    """Trace ``connection`` as one of ``engine``'s: a connection the engine's pool does not
    hold (``shared.db.ReadPool``) reports to the same hooks."""
    connection.cursor_factory, connection.server_cursor_factory = _CURSORS[engine.sync_engine]


@contextmanager
def recording(engine: AsyncEngine | None, hook: Hook) -> Iterator[Hook]:
    """``hook`` sees every statement ``engine`` (every traced engine if None) sends meanwhile."""
    if engine is None:
        hooks = EVERY_ENGINE
    else:
        hooks = _BY_ENGINE.get(engine.sync_engine)
        if hooks is None:
            raise ValueError("this engine is not traced; build it with shared.db.make_engine")
    hooks.append(hook)
    try:
        yield hook
    finally:
        hooks.remove(hook)
