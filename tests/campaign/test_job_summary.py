"""A campaign's searches summarised (``GET /campaigns/{id}``): one statement, whatever the jobs."""

from services.campaign.repository import CampaignRepository

from ..factories import make_campaign, make_job, make_user


async def test_job_summary_counts_by_status_and_sums_results(session, statements):
    user = await make_user(session)
    busy = await make_campaign(session, user)
    await make_job(session, busy, status="completed", processed_results=120)
    await make_job(session, busy, status="completed", processed_results=80)
    await make_job(session, busy, status="error", processed_results=5)
    await make_job(session, busy, status="pending")
    other = await make_campaign(session, await make_user(session))
    await make_job(session, other, status="completed", processed_results=999)

    with statements.counting():
        summary = await CampaignRepository(session).job_summary(busy.id)
    assert statements.count == 1

    assert (summary.total, summary.processed_results) == (4, 205)
    assert summary.by_status == {
        "pending": 1,
        "processing": 0,
        "completed": 2,
        "error": 1,
        "timeout": 0,
        "cancelled": 0,
    }


async def test_a_campaign_without_jobs_has_a_summary_of_zeros(session):
    idle = await make_campaign(session, await make_user(session))
    summary = await CampaignRepository(session).job_summary(idle.id)
    assert (summary.total, summary.processed_results) == (0, 0)
    assert set(summary.by_status.values()) == {0}
