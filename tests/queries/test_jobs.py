"""JSONB containment and key-exists on jobs (GIN-indexed), and the status projection."""

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import InvalidRequestError

from shared.queries.jobs import (
    JobStatusRow,
    job_status_rows,
    jobs_with_keyword,
    jobs_with_search_param,
)

from ..factories import make_campaign, make_job, make_user
from .conftest import explain

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

    found = await jobs_with_keyword(session, user.id, "fitness")

    assert [job.id for job in found] == [newer.id, older.id]  # newest first
    with pytest.raises(InvalidRequestError):
        _ = found[0].search_params  # not loaded, and never lazily


async def test_keyword_is_a_bound_parameter_not_sql(session, executed):
    user, campaign = await user_and_campaign(session)
    tricky = "fit\"]' OR 1=1 --"
    job = await make_job(session, campaign, keywords=[tricky])
    await make_job(session, campaign, keywords=["other"])

    found = await jobs_with_keyword(session, user.id, tricky)

    assert [j.id for j in found] == [job.id]
    sql, _ = executed.matching("@>")
    assert "OR 1=1" not in sql and "fit" not in sql
    assert "search_params" not in sql


async def test_search_param_key_exists_at_the_top_level_only(session):
    user, campaign = await user_and_campaign(session)
    has_key = await make_job(session, campaign, search_params={"targetAudience": "gen z"})
    null_value = await make_job(session, campaign, search_params={"targetAudience": None})
    await make_job(session, campaign, search_params={"nested": {"targetAudience": 1}})
    await make_job(session, campaign, search_params={"targetaudience": 1})
    stranger = await make_campaign(session, await make_user(session))
    await make_job(session, stranger, search_params={"targetAudience": "x"})

    found = await jobs_with_search_param(session, user.id, "targetAudience")

    assert {job.id for job in found} == {has_key.id, null_value.id}


async def bulk_jobs(session, campaign, n: int, keywords: str, search_params: str) -> None:
    await session.execute(
        sa.text(
            "INSERT INTO scraping_jobs (user_id, campaign_id, platform, keywords, search_params)"
            " SELECT :u, :c, 'tiktok', CAST(:k AS jsonb), CAST(:p AS jsonb)"
            " FROM generate_series(1, :n)"
        ),
        {"u": campaign.user_id, "c": campaign.id, "k": keywords, "p": search_params, "n": n},
    )


@pytest.mark.parametrize(
    ("call", "operator", "index"),
    [
        (lambda s, u: jobs_with_keyword(s, u, "fitness"), "@>", "ix_scraping_jobs_keywords_gin"),
        (
            lambda s, u: jobs_with_search_param(s, u, "rare"),
            " ? ",
            "ix_scraping_jobs_search_params_gin",
        ),
    ],
    ids=["keywords-contain", "search-params-key"],
)
async def test_jsonb_helpers_are_answered_by_their_gin_index(
    session, executed, call, operator, index
):
    # A user with many jobs and a rare match: the shape the GIN index exists for. ANALYZE runs
    # in the test's transaction, so its statistics are rolled back with everything else.
    user, campaign = await user_and_campaign(session)
    await bulk_jobs(session, campaign, 1000, '["food"]', '{"common": 1}')
    await bulk_jobs(session, campaign, 2, '["fitness"]', '{"rare": 1}')
    await session.execute(sa.text("ANALYZE scraping_jobs"))
    await session.execute(sa.text("SET LOCAL enable_seqscan = off"))

    assert len(await call(session, user.id)) == 2
    sql, params = executed.matching(operator)
    plan = await explain(session, sql, params)
    assert index in plan, plan


async def test_status_rows_project_four_columns_newest_first(session, statements):
    user, campaign = await user_and_campaign(session)
    jobs = [
        await make_job(
            session,
            campaign,
            created_at=T0 + timedelta(hours=i),
            status="processing",
            progress=10 * i,
        )
        for i in range(3)
    ]

    with statements.counting():
        rows = await job_status_rows(session, user.id, limit=2)

    newest_two = [jobs[2], jobs[1]]
    assert rows == [JobStatusRow(j.id, "processing", j.created_at, j.progress) for j in newest_two]
    assert [r.progress for r in rows] == [20, 10]
    assert rows[0]._fields == ("id", "status", "created_at", "progress")
    (sql,) = statements.statements
    assert "keywords" not in sql and "search_params" not in sql
