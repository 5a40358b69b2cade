"""Sessions for read-only requests: no transaction round trips around a one-statement read.

A default session opens a transaction (``BEGIN``) on its first statement and rolls it back on
close: two extra round trips that, measured by ``scout db perf``, cost more than the query
itself for every seed read pattern. Every read helper in ``shared.queries`` is one statement
(one snapshot), so a GET can run it in autocommit and lose nothing. Never use these sessions
for writes: nothing they do is atomic with anything else.
"""

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from shared.db import READS, read_pool


def read_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions whose statements run in autocommit (read paths only): ORM and Core statements
    on ``engine``'s pool, ``shared.db.DriverQuery`` reads on the engine's ``ReadPool``, so a
    request whose reads all take the driver path never checks a connection out of SQLAlchemy's
    pool."""
    reads = read_pool(engine)
    return async_sessionmaker(
        engine.execution_options(isolation_level="AUTOCOMMIT"),
        class_=AsyncSession,
        expire_on_commit=False,
        autoflush=False,
        info={} if reads is None else {READS: reads},
    )


async def release(session: AsyncSession) -> None:
    """End a read session: give back the connection its ORM or Core statements took, if they
    took one (driver-path reads hold none, and closing a session that holds nothing still
    costs ~20 µs)."""
    if session.in_transaction():
        await session.close()
