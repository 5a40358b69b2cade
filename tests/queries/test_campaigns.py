"""Campaigns with their jobs without N+1, job summaries, and month-bucketed counts."""

from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import InvalidRequestError

from shared.queries.campaigns import (
    campaign_job_summary,
    list_campaigns,
    list_campaigns_with_jobs,
    monthly_campaign_count,
    monthly_job_counts,
)

from ..factories import make_campaign, make_job, make_user

UTC_FEB = datetime(2026, 2, 1, tzinfo=UTC)


async def campaigns_with_jobs(session, n: int, jobs_each: int = 2):
    user = await make_user(session)
    for _ in range(n):
        campaign = await make_campaign(session, user)
        for _ in range(jobs_each):
            await make_job(session, campaign, search_params={"big": "x" * 1000})
    # Forget the instances the factories built, so what is loaded is what the query loaded.
    session.expunge_all()
    return user


@pytest.mark.parametrize("n", [1, 50])
async def test_listing_n_campaigns_with_jobs_costs_two_statements(session, statements, n):
    user = await campaigns_with_jobs(session, n)
    with statements.counting():
        page = await list_campaigns_with_jobs(session, user.id, page=1, page_size=50)
        jobs = [job for campaign in page.items for job in campaign.jobs]
    # The same count for 1 and 50 campaigns: the page (with its total), then one IN query for
    # all their jobs.
    assert statements.count == 2, statements.statements
    assert (len(page.items), len(jobs)) == (n, 2 * n)
    assert all(job.campaign_id == campaign.id for campaign in page.items for job in campaign.jobs)


async def test_jobs_are_loaded_without_their_search_params(session, statements):
    user = await campaigns_with_jobs(session, 2)
    with statements.counting():
        page = await list_campaigns_with_jobs(session, user.id, page=1, page_size=10)
    jobs_sql = next(sql for sql in statements.statements if "FROM scraping_jobs" in sql)
    assert "search_params" not in jobs_sql
    assert "scraping_jobs.keywords" in jobs_sql
    job = page.items[0].jobs[0]
    assert job.keywords == ["fitness"]
    with pytest.raises(InvalidRequestError):
        _ = job.search_params  # deferred with raiseload: never a per-job lazy load


async def test_relationships_not_loaded_by_the_query_raise(session):
    user = await campaigns_with_jobs(session, 1)
    plain = await list_campaigns(session, user.id, page=1, page_size=10)
    with pytest.raises(InvalidRequestError, match="lazy='raise'"):
        _ = plain.items[0].jobs
    session.expunge_all()
    with_jobs = await list_campaigns_with_jobs(session, user.id, page=1, page_size=10)
    with pytest.raises(InvalidRequestError, match="lazy='raise'"):
        _ = with_jobs.items[0].jobs[0].results


async def test_a_campaign_without_jobs_has_an_empty_list(session):
    user = await make_user(session)
    await make_campaign(session, user)
    session.expunge_all()
    page = await list_campaigns_with_jobs(session, user.id, page=1, page_size=10)
    assert page.items[0].jobs == []


async def test_job_summary_counts_by_status_and_sums_results(session, statements):
    user = await make_user(session)
    busy, idle = await make_campaign(session, user), await make_campaign(session, user)
    await make_job(session, busy, status="completed", processed_results=120)
    await make_job(session, busy, status="completed", processed_results=80)
    await make_job(session, busy, status="error", processed_results=5)
    await make_job(session, busy, status="pending")
    other = await make_campaign(session, await make_user(session))
    await make_job(session, other, status="completed", processed_results=999)

    with statements.counting():
        summary = await campaign_job_summary(session, [busy.id, idle.id])
    assert statements.count == 1
    assert "GROUP BY" in statements.statements[0]

    assert set(summary) == {busy.id, idle.id}
    assert (summary[busy.id].total, summary[busy.id].processed_results) == (4, 205)
    assert summary[busy.id].by_status == {
        "pending": 1,
        "processing": 0,
        "completed": 2,
        "error": 1,
        "timeout": 0,
        "cancelled": 0,
    }
    assert (summary[idle.id].total, summary[idle.id].processed_results) == (0, 0)
    assert set(summary[idle.id].by_status.values()) == {0}


async def test_job_summary_of_nothing_asks_nothing(session, statements):
    with statements.counting():
        assert await campaign_job_summary(session, []) == {}
    assert statements.count == 0


async def test_monthly_campaign_count_respects_both_month_edges(session):
    user = await make_user(session)
    edge = timedelta(microseconds=1)
    for moment in [
        UTC_FEB - edge,  # January
        UTC_FEB,
        datetime(2026, 2, 28, 23, 59, tzinfo=UTC),
        datetime(2026, 3, 1, tzinfo=UTC),  # March
    ]:
        await make_campaign(session, user, created_at=moment)
    await make_campaign(session, await make_user(session), created_at=UTC_FEB)  # someone else

    assert await monthly_campaign_count(session, user.id, UTC_FEB) == 2
    assert await monthly_campaign_count(session, user.id, datetime(2026, 1, 1, tzinfo=UTC)) == 1
    assert await monthly_campaign_count(session, user.id, datetime(2026, 3, 1, tzinfo=UTC)) == 1
    assert await monthly_campaign_count(session, user.id, datetime(2025, 12, 1, tzinfo=UTC)) == 0


async def test_monthly_job_counts_bucket_by_utc_month_with_empty_months(session):
    user = await make_user(session)
    campaign = await make_campaign(session, user)
    for moment in [
        datetime(2025, 11, 30, tzinfo=UTC),  # before the window
        datetime(2025, 12, 1, tzinfo=UTC),
        datetime(2026, 1, 31, 23, 59, 59, 999999, tzinfo=UTC),
        # 21:00 on 31 January in New York, but February in UTC.
        datetime(2026, 2, 1, 2, 0, tzinfo=UTC),
        datetime(2026, 2, 1, tzinfo=UTC),
        datetime(2026, 2, 14, tzinfo=UTC),
    ]:
        await make_job(session, campaign, created_at=moment)
    other = await make_campaign(session, await make_user(session))
    await make_job(session, other, created_at=datetime(2026, 2, 2, tzinfo=UTC))
    # Month boundaries must not move with the session's time zone.
    await session.execute(sa.text("SET LOCAL TimeZone = 'America/New_York'"))

    counts = await monthly_job_counts(
        session, user.id, months=4, now=datetime(2026, 3, 15, tzinfo=UTC)
    )

    assert [(c.month, c.count) for c in counts] == [
        (date(2025, 12, 1), 1),
        (date(2026, 1, 1), 1),
        (date(2026, 2, 1), 3),
        (date(2026, 3, 1), 0),
    ]


async def test_monthly_job_counts_cross_a_year_boundary(session):
    user = await make_user(session)
    counts = await monthly_job_counts(
        session, user.id, months=3, now=datetime(2026, 1, 10, tzinfo=UTC)
    )
    assert [c.month for c in counts] == [date(2025, 11, 1), date(2025, 12, 1), date(2026, 1, 1)]
    with pytest.raises(ValueError):
        await monthly_job_counts(session, user.id, months=0)
