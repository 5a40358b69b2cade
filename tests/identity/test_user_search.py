"""The admin user search (``IdentityRepository.search_users``): a case-insensitive email prefix
with LIKE wildcards taken literally, answered by ``ix_users_email_lower``."""

import uuid

import sqlalchemy as sa

from services.identity.repository import IdentityRepository

from ..factories import make_user
from ..support.sql import explain


async def found_ids(session, prefix: str, page_size: int = 20) -> list[uuid.UUID]:
    page = await IdentityRepository(session).search_users(prefix, 1, page_size)
    return [row["id"] for row in page.items]


async def test_email_search_is_a_case_insensitive_prefix(session):
    tag = uuid.uuid4().hex[:8]
    first = await make_user(session, email=f"Ann.{tag}@example.com")
    second = await make_user(session, email=f"ann.{tag}.b@example.com")
    await make_user(session, email=f"xann.{tag}@example.com")

    assert set(await found_ids(session, f"ANN.{tag}")) == {first.id, second.id}
    assert len(await found_ids(session, f"ann.{tag}", page_size=1)) == 1


async def test_email_search_treats_wildcards_literally(session):
    tag = uuid.uuid4().hex[:8]
    underscore = await make_user(session, email=f"a_{tag}@example.com")
    await make_user(session, email=f"ab{tag}@example.com")
    percent = await make_user(session, email=f"50%{tag}@example.com")
    await make_user(session, email=f"50x{tag}@example.com")
    backslash = await make_user(session, email=f"b\\{tag}@example.com")

    assert await found_ids(session, f"a_{tag}") == [underscore.id]
    assert await found_ids(session, f"50%{tag}") == [percent.id]
    assert await found_ids(session, f"b\\{tag}") == [backslash.id]
    assert await found_ids(session, "%") == []


async def test_email_search_uses_the_lower_email_index(session, executed):
    await make_user(session, email="index@example.com")
    await session.execute(sa.text("SET LOCAL enable_seqscan = off"))
    await found_ids(session, "ind_")
    sql, params = executed.matching("LIKE")
    plan = await explain(session, sql, params)
    assert "ix_users_email_lower" in plan, plan
    assert "~>=~" in plan, plan  # a range scan on the prefix, not a full index scan
