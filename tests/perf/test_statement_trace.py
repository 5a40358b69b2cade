"""Statements are recorded at the driver (``shared.sqltrace``): reads on the driver path
(``shared.db.DriverQuery``) are seen by the statement-count tests, ``scout db perf`` and the
HTTP bench, which SQLAlchemy's own cursor hook would miss."""

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from shared import sqltrace
from shared.db import DriverQuery, sqlalchemy_url
from shared.models import User
from shared.queries.users import get_user_profile, live_user_id

from ..factories import make_user


async def test_driver_path_reads_are_recorded_where_sqlalchemy_sees_nothing(
    session, engine, statements
):
    user = await make_user(session)
    orm_seen: list[str] = []

    def orm_hook(conn, cursor, statement, *rest) -> None:
        orm_seen.append(statement)

    sa.event.listen(engine.sync_engine, "before_cursor_execute", orm_hook)
    try:
        with statements.counting():
            assert await live_user_id(session, user.user_id) == user.id
            profile = await get_user_profile(session, user.user_id)
            assert await live_user_id(session, "nobody") is None
    finally:
        sa.event.remove(engine.sync_engine, "before_cursor_execute", orm_hook)
    assert profile is not None and profile.id == user.id and profile.email == user.email
    assert statements.count == 3
    assert orm_seen == []  # the reason the recording moved to the driver


async def test_orm_server_side_and_every_engine_statements_are_recorded(engine, database_url):
    seen: list[tuple[str, object]] = []
    with sqltrace.recording(None, lambda cursor, sql, params: seen.append((sql, params))):
        async with AsyncSession(engine) as session:
            await session.scalar(sa.select(sa.func.count()).select_from(User))
            stream = await session.stream(sa.text("SELECT generate_series(1, 3)"))
            assert [row[0] async for row in stream] == [1, 2, 3]
    assert any("count(*)" in sql for sql, _ in seen)
    assert any("generate_series" in sql for sql, _ in seen)  # a server-side cursor
    other = create_async_engine(sqlalchemy_url(database_url))
    try:
        with pytest.raises(ValueError, match="not traced"), sqltrace.recording(other, print):
            pass
    finally:
        await other.dispose()


async def test_a_driver_query_binds_what_sqlalchemy_would(session):
    user = await make_user(session)
    by_email = DriverQuery(
        sa.select(User.id, sa.literal("fixed").label("tag")).where(
            User.email == sa.bindparam("email", type_=sa.String)
        )
    )
    assert await by_email.first(session, {"email": user.email}) == (user.id, "fixed")
    assert await by_email.mapping(session, {"email": "nobody@example.com"}) is None
    with pytest.raises(ValueError, match="expanding"):
        DriverQuery(sa.select(User.id).where(User.id.in_(sa.bindparam("ids", expanding=True))))
