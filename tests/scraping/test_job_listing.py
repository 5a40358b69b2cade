"""``GET /jobs``'s listing (``JobRepository.page``): JSONB keyword containment answered by the
GIN index, ``search_params`` never loaded, and a total from the pagination helper's count."""

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import InvalidRequestError

from services.scraping.repository import JobRepository

from ..factories import make_campaign, make_job, make_user
from ..support.sql import explain

T0 = datetime(2026, 1, 1, tzinfo=UTC)


async def user_and_campaign(session):
    user = await make_user(session)
    return user, await make_campaign(session, user)


async def test_keyword_containment_is_exact_and_scoped_to_the_user(session):
    user, campaign = await user_and_campaign(session)
    older = await make_job(session, campaign, keywords=["fitness", "yoga"], created_at=T0)
    newer = await make_job(
        session, campaign, keywords=["fitness"], created_at=T0 + timedelta(days=1)
    )
    for keywords in (["food"], ["Fitness"], ["fitness coach"], []):
        await make_job(session, campaign, keywords=keywords)
    stranger = await make_campaign(session, await make_user(session))
    await make_job(session, stranger, keywords=["fitness"])
    session.expunge_all()

    found = await JobRepository(session).page(user.id, keyword="fitness", page=1, page_size=20)

    assert [job.id for job in found.items] == [newer.id, older.id]  # newest first
    assert found.total == 2
    with pytest.raises(InvalidRequestError):
        _ = found.items[0].search_params  # not loaded, and never lazily


async def test_keyword_is_a_bound_parameter_not_sql(session, executed):
    user, campaign = await user_and_campaign(session)
    tricky = "fit\"]' OR 1=1 --"
    job = await make_job(session, campaign, keywords=[tricky])
    await make_job(session, campaign, keywords=["other"])

    found = await JobRepository(session).page(user.id, keyword=tricky, page=1, page_size=20)

    assert [j.id for j in found.items] == [job.id]
    sql, _ = executed.matching("@>")
    assert "OR 1=1" not in sql and "fit" not in sql
    assert "search_params" not in sql


async def test_the_total_is_counted_without_a_window_over_every_row(session, statements):
    user, campaign = await user_and_campaign(session)
    other = await make_campaign(session, user)
    for i in range(5):
        await make_job(session, campaign, status="completed", created_at=T0 + timedelta(hours=i))
    await make_job(session, campaign, status="pending")
    await make_job(session, other, status="completed")
    repo = JobRepository(session)

    with statements.counting():
        page = await repo.page(
            user.id, campaign_id=campaign.id, status="completed", page=2, page_size=2
        )
    (sql,) = statements.statements  # items and total from one statement
    assert "OVER" not in sql.upper()
    assert (len(page.items), page.total) == (2, 5)
    assert [j.created_at for j in page.items] == [T0 + timedelta(hours=2), T0 + timedelta(hours=1)]
    past = await repo.page(user.id, campaign_id=campaign.id, page=9, page_size=2)
    assert (past.items, past.total) == ([], 6)


async def test_keyword_listing_is_answered_by_the_gin_index(session, executed):
    # A user with many jobs and a rare match: the shape the GIN index exists for. ANALYZE runs
    # in the test's transaction, so its statistics are rolled back with everything else.
    user, campaign = await user_and_campaign(session)
    await session.execute(
        sa.text(
            "INSERT INTO scraping_jobs (user_id, campaign_id, platform, keywords)"
            " SELECT :u, :c, 'tiktok', CAST(k AS jsonb)"
            " FROM (SELECT CASE WHEN g <= 2 THEN '[\"fitness\"]' ELSE '[\"food\"]' END AS k"
            "       FROM generate_series(1, 1002) g) s"
        ),
        {"u": user.id, "c": campaign.id},
    )
    await session.execute(sa.text("ANALYZE scraping_jobs"))
    await session.execute(sa.text("SET LOCAL enable_seqscan = off"))

    found = await JobRepository(session).page(user.id, keyword="fitness", page=1, page_size=20)

    assert found.total == 2
    sql, params = executed.matching("@>")
    plan = await explain(session, sql, params)
    assert "ix_scraping_jobs_keywords_gin" in plan, plan
