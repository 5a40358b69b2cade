"""A list's page reads the page's items, not the list: with one big list among many small
ones (so the average list holds one item, as the planner's statistics say), the page's plan
walks ``(list_id, position)`` to the page and joins only those items' profiles."""

import psycopg
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.campaign.repository import ListRepository
from shared import sqltrace
from shared.db import libpq_url, make_engine
from tooling import migrate

from ..factories import make_list, make_user
from ..support.sql import analyzed_plan, touched

BIG = 3_000
SMALL_LISTS = 2_000
PAGE_SIZE = 20

# A profile per item; the big list's items at positions 1.., one item in each small list.
FILL = """
INSERT INTO creator_profiles (platform, external_id, handle)
SELECT 'tiktok', i::text, 'h' || i FROM generate_series(1, :big + :small) AS i;
INSERT INTO list_items (list_id, creator_id, position)
SELECT :big_list, p.id, p.external_id::int FROM creator_profiles AS p
WHERE p.external_id::int <= :big;
UPDATE creator_lists SET creator_count = :big WHERE id = :big_list;
INSERT INTO creator_lists (user_id, name)
SELECT :user, 'small ' || i FROM generate_series(1, :small) AS i;
INSERT INTO list_items (list_id, creator_id, position)
SELECT l.id, p.id, 1 FROM creator_lists AS l
JOIN creator_profiles AS p ON p.external_id::int = :big + substr(l.name, 7)::int
WHERE l.name LIKE 'small %';
"""


async def test_a_page_of_a_big_list_touches_the_page_not_the_list(scratch_database):
    url = scratch_database()
    migrate.upgrade(url, "head")
    engine = make_engine(url, pool_size=1)
    try:
        async with AsyncSession(engine, expire_on_commit=False) as session, session.begin():
            user = await make_user(session)
            big_list = await make_list(session, user)
            params = {"big": BIG, "small": SMALL_LISTS, "user": user.id, "big_list": big_list.id}
            for statement in FILL.split(";"):
                if statement.strip():
                    await session.execute(sa.text(statement), params)
        with psycopg.connect(libpq_url(url), autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE creator_lists, list_items, creator_profiles")
            (items,) = conn.execute(
                "SELECT count(*) FROM list_items WHERE list_id = %s", (big_list.id,)
            ).fetchone()
        assert items == BIG

        calls = []
        async with AsyncSession(engine) as session:
            with sqltrace.recording(engine, lambda c, sql, p: calls.append((sql, p))):
                page = await ListRepository(session).items_page(
                    user.id, big_list.id, page=3, page_size=PAGE_SIZE
                )
            assert page is not None and page.total == BIG
            assert [i.position for i in page.items] == list(range(41, 61))
            ((sql, parameters),) = calls
            plan = await analyzed_plan(session, sql, parameters)
    finally:
        await engine.dispose()
    # The page is items 41 to 60: the walk passes 60 items and joins at most those profiles.
    assert touched(plan, "list_items") <= 3 * PAGE_SIZE + 1, touched(plan, "list_items")
    assert touched(plan, "creator_profiles") <= 3 * PAGE_SIZE + 1
