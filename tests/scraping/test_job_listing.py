"""``GET /jobs``'s listing (``JobRepository.page``): a keyword answered by the user's range of
``scraping_job_keywords`` (kept by triggers from the jobs' keywords), ``search_params`` never
read, and a total counted up to the cap, then shown as the cap with ``X-Total-Capped``."""

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.scraping.api import create_app as scraping_app
from services.scraping.repository import COUNT_CAP, JobRepository
from shared.models import ScrapingJob

from ..factories import make_campaign, make_job, make_user
from ..perf.test_read_routes import recorded
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

    assert [job["id"] for job in found.items] == [newer.id, older.id]  # newest first
    assert found.total == 2
    assert found.items[1]["keywords"] == ["fitness", "yoga"]
    assert "search_params" not in found.items[0]  # the runner state is never read


async def test_keyword_is_a_bound_parameter_not_sql(session, executed):
    user, campaign = await user_and_campaign(session)
    tricky = "fit\"]' OR 1=1 --"
    job = await make_job(session, campaign, keywords=[tricky])
    await make_job(session, campaign, keywords=["other"])

    found = await JobRepository(session).page(user.id, keyword=tricky, page=1, page_size=20)

    assert [j["id"] for j in found.items] == [job.id]
    sql, _ = executed.matching("JOIN scraping_jobs")
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
    assert [j["created_at"] for j in page.items] == [
        T0 + timedelta(hours=2),
        T0 + timedelta(hours=1),
    ]
    past = await repo.page(user.id, campaign_id=campaign.id, page=9, page_size=2)
    assert (past.items, past.total) == ([], 6)


async def test_keyword_listing_walks_the_users_keyword_range(session, executed):
    # A user with many jobs and a rare match: the page and its total read the user's entries of
    # that keyword, never the user's other jobs. ANALYZE runs in the test's transaction, so its
    # statistics are rolled back with everything else.
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
    await session.execute(sa.text("ANALYZE scraping_jobs, scraping_job_keywords"))
    await session.execute(sa.text("SET LOCAL enable_seqscan = off"))

    found = await JobRepository(session).page(user.id, keyword="fitness", page=1, page_size=20)

    assert found.total == 2
    sql, params = executed.matching("JOIN scraping_jobs")
    plan = await explain(session, sql, params)
    assert "ix_scraping_job_keywords_user_id_keyword_newest" in plan, plan
    assert "ix_scraping_jobs_keywords_gin" not in plan, plan


async def test_keyword_rows_follow_the_jobs(session):
    """Every write path keeps ``scraping_job_keywords`` equal to the jobs' string keywords."""
    user, campaign = await user_and_campaign(session)
    kept = await make_job(session, campaign, keywords=["fitness", "yoga"])
    moved = await make_job(session, campaign, keywords=["food"])
    gone = await make_job(session, campaign, keywords=["travel"])
    await make_job(session, campaign, keywords=[])
    await session.execute(
        sa.update(ScrapingJob).where(ScrapingJob.id == moved.id).values(keywords=["vegan", 7])
    )
    await session.execute(sa.delete(ScrapingJob).where(ScrapingJob.id == gone.id))

    rows = await session.execute(
        sa.text(
            "SELECT job_id, keyword FROM scraping_job_keywords WHERE user_id = :u ORDER BY 1, 2"
        ),
        {"u": user.id},
    )
    expected = sorted([(kept.id, "fitness"), (kept.id, "yoga"), (moved.id, "vegan")])
    assert sorted(tuple(r) for r in rows) == expected
    repo = JobRepository(session)
    assert (await repo.page(user.id, keyword="food", page=1, page_size=5)).total == 0
    vegan = await repo.page(user.id, keyword="vegan", page=1, page_size=5)
    assert [j["id"] for j in vegan.items] == [moved.id]


async def test_a_huge_listing_stops_counting_at_the_cap(service_settings, committed, signing_keys):
    n = COUNT_CAP + 25
    async with AsyncSession(committed, expire_on_commit=False) as session, session.begin():
        user = await make_user(session)
        campaign = await make_campaign(session, user)
        await session.execute(
            sa.text(
                "INSERT INTO scraping_jobs (user_id, campaign_id, platform, keywords, created_at)"
                " SELECT :u, :c, 'tiktok', '[\"fitness\"]', :t0 + g * interval '1 minute'"
                " FROM generate_series(1, :n) g"
            ),
            {"u": user.id, "c": campaign.id, "n": n, "t0": T0},
        )
        for keywords in (["rare"], ["rare", "fitness"]):
            await make_job(session, campaign, keywords=keywords)
    headers = {"authorization": f"Bearer {signing_keys.token(user.user_id)}"}
    async with recorded(scraping_app(service_settings)) as (client, _):
        for params in ({"keyword": "fitness"}, {}, {"keyword": "fitness", "status": "pending"}):
            capped = await client.get("/jobs", params={**params, "page_size": 3}, headers=headers)
            assert capped.status_code == 200, capped.text
            assert capped.json()["total"] == COUNT_CAP, params
            assert capped.headers["x-total-capped"] == "true"
        page = await client.get("/jobs", params={"keyword": "fitness", "page": 2, "page_size": 2})
        assert page.status_code == 401  # the listing is the caller's only
        page = await client.get(
            "/jobs", params={"keyword": "fitness", "page": 2, "page_size": 2}, headers=headers
        )
        newest = [T0 + timedelta(minutes=m) for m in (n - 1, n - 2)]
        got = [datetime.fromisoformat(j["created_at"]) for j in page.json()["items"]]
        assert got == newest  # after the newest ("rare", "fitness"), newest first
        # Under the cap the count is exact.
        exact = await client.get("/jobs", params={"keyword": "rare"}, headers=headers)
        assert exact.json()["total"] == 2 and "x-total-capped" not in exact.headers
