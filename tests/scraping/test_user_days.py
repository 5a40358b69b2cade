"""``scraping_user_days``: the per-user per-UTC-day search counters behind the dashboard follow
every way jobs are written (ORM, bulk SQL, terminal transitions, deletes, cascades, the purge),
stay exact under concurrent writers, write nothing on a running job's progress, and give the
dashboard its whole-UTC-day window."""

import asyncio
import uuid
from datetime import UTC, datetime, time, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from services.campaign.repository import DashboardRepository
from services.scraping.service import JobService
from shared.models import Campaign, ScrapingJob, ScrapingUserDay, User
from tooling.perf.analyze import DAYS_DRIFT

from ..factories import make_campaign, make_job, make_user


async def drift(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return (await conn.execute(sa.text(DAYS_DRIFT))).scalar_one()


async def days(engine: AsyncEngine, user_id: uuid.UUID) -> dict:
    """The user's rows as {day: (searches, completed, creators)}."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            sa.select(
                ScrapingUserDay.day,
                ScrapingUserDay.searches,
                ScrapingUserDay.completed,
                ScrapingUserDay.creators,
            ).where(ScrapingUserDay.user_id == user_id)
        )
        return {r.day: (r.searches, r.completed, r.creators) for r in rows}


async def finish(engine: AsyncEngine, job_id: uuid.UUID, status: str, found: int) -> None:
    """What ``JobService.finish`` writes to the job row."""
    async with engine.begin() as conn:
        await conn.execute(
            sa.update(ScrapingJob)
            .where(ScrapingJob.id == job_id)
            .values(status=status, processed_results=found, completed_at=sa.func.now())
        )


def utc_day(moment: datetime):
    return moment.astimezone(UTC).date()


async def test_counters_follow_every_write_path(committed):
    now = datetime.now(UTC)
    today, old = utc_day(now), utc_day(now - timedelta(days=40))
    async with AsyncSession(committed, expire_on_commit=False) as session:
        user, other = await make_user(session), await make_user(session)
        kept, dropped = await make_campaign(session, user), await make_campaign(session, user)
        jobs = [await make_job(session, kept) for _ in range(3)]
        await make_job(session, kept, created_at=now - timedelta(days=40), status="completed",
                       processed_results=7)  # fmt: skip
        await make_job(session, dropped)
        await make_job(session, await make_campaign(session, other), status="completed")
        await session.commit()
    # A bulk insert: one statement, one grouped upsert.
    async with committed.begin() as conn:
        await conn.execute(
            sa.text(
                "INSERT INTO scraping_jobs (user_id, campaign_id, platform, status,"
                " processed_results) SELECT :u, :c, 'tiktok', 'completed', 10"
                " FROM generate_series(1, 5)"
            ),
            {"u": user.id, "c": kept.id},
        )
    assert await days(committed, user.id) == {today: (9, 5, 50), old: (1, 1, 7)}
    assert await drift(committed) == 0

    # A running job's progress writes nothing here.
    before = await days(committed, user.id)
    async with committed.begin() as conn:
        xmin = sa.text("SELECT xmin::text FROM scraping_user_days WHERE user_id = :u AND day = :d")
        version = (await conn.execute(xmin, {"u": user.id, "d": today})).scalar_one()
        for status in ("processing", "processing"):
            await conn.execute(
                sa.update(ScrapingJob)
                .where(ScrapingJob.id == jobs[0].id)
                .values(status=status, processed_results=ScrapingJob.processed_results + 20)
            )
        assert (await conn.execute(xmin, {"u": user.id, "d": today})).scalar_one() == version
    assert await days(committed, user.id) == before

    # Terminal transitions: completed counts the search and its creators, the others only
    # their creators; a deleted job and a campaign's cascade take theirs back.
    await finish(committed, jobs[0].id, "completed", 40)
    await finish(committed, jobs[1].id, "error", 3)
    async with committed.begin() as conn:
        await conn.execute(sa.delete(ScrapingJob).where(ScrapingJob.id == jobs[2].id))
        await conn.execute(sa.delete(Campaign).where(Campaign.id == dropped.id))
    assert await days(committed, user.id) == {today: (7, 6, 93), old: (1, 1, 7)}
    assert await drift(committed) == 0

    # The purge removes the user's rows; deleting a user cascades to theirs.
    async with AsyncSession(committed) as session, session.begin():
        await JobService(session).purge_user(user.id, user.user_id)
    async with committed.begin() as conn:
        await conn.execute(sa.delete(User).where(User.id == other.id))
    assert await days(committed, user.id) == {}
    assert await days(committed, other.id) == {}
    assert await drift(committed) == 0


async def test_concurrent_inserts_and_completions_stay_exact(committed):
    async with AsyncSession(committed, expire_on_commit=False) as session:
        user = await make_user(session)
        campaign = await make_campaign(session, user)
        first = [await make_job(session, campaign) for _ in range(12)]
        await session.commit()

    async def insert(n: int) -> None:
        async with AsyncSession(committed) as session, session.begin():
            for _ in range(n):
                await make_job(session, campaign)

    # Completions of the first jobs while new jobs of the same user (same day rows) go in.
    await asyncio.gather(
        *(finish(committed, job.id, "completed" if i % 3 else "timeout", i)
          for i, job in enumerate(first)),
        *(insert(3) for _ in range(6)),
    )  # fmt: skip
    assert await drift(committed) == 0
    async with committed.connect() as conn:
        recount = (
            await conn.execute(
                sa.select(
                    sa.func.count(),
                    sa.func.count().filter(ScrapingJob.status == "completed"),
                    sa.func.sum(ScrapingJob.processed_results),
                ).where(ScrapingJob.user_id == user.id)
            )
        ).one()
    kept = await days(committed, user.id)
    assert tuple(recount) == tuple(map(sum, zip(*kept.values(), strict=True)))
    assert tuple(recount) == (12 + 18, 8, sum(range(12)))


async def test_the_dashboard_window_is_whole_utc_days(committed):
    now = datetime.now(UTC)
    first_day = datetime.combine(utc_day(now) - timedelta(days=29), time(), UTC)
    async with AsyncSession(committed, expire_on_commit=False) as session:
        user = await make_user(session)
        campaign = await make_campaign(session, user)
        for created, status, found in (
            (first_day, "completed", 10),  # the window's first instant
            (first_day - timedelta(microseconds=1), "completed", 100),  # the day before
            (now, "processing", 4),  # running: its creators so far, read live
            (now, "pending", 0),
            (now, "cancelled", 2),
        ):
            await make_job(session, campaign, created_at=created, status=status,
                           processed_results=found)  # fmt: skip
        await session.commit()
    async with AsyncSession(committed) as session:
        found = await DashboardRepository(session).overview(user.id)
    assert found["searches_last_30_days"] == 4
    assert found["searches_completed_last_30_days"] == 1
    assert found["creators_found_last_30_days"] == 10 + 4 + 2
