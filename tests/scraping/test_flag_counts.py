"""``scraping_job_flag_counts``: the per-job counts of each ``verified`` / ``has_email``
combination follow every way creators are written (the workers' store statement, bulk SQL, an
update of a creator, deletes, a job's, a campaign's and a user's cascade), stay exact under
concurrent writers of one job (the totals they give pages are checked in
``test_results_narrowing``)."""

import asyncio
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from services.scraping.repository import JobRepository
from shared.models import Campaign, ScrapingJob, ScrapingJobFlagCount, User
from tooling.perf.analyze import FLAGS_DRIFT

from ..factories import make_campaign, make_job, make_user


async def drift(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return (await conn.execute(sa.text(FLAGS_DRIFT))).scalar_one()


async def counts(engine: AsyncEngine, job_id: uuid.UUID) -> dict[tuple[bool, bool], int]:
    """The job's rows as {(verified, has_email): creators}, zero rows left out."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            sa.select(
                ScrapingJobFlagCount.verified,
                ScrapingJobFlagCount.has_email,
                ScrapingJobFlagCount.creators,
            ).where(ScrapingJobFlagCount.job_id == job_id, ScrapingJobFlagCount.creators != 0)
        )
        return {(r.verified, r.has_email): r.creators for r in rows}


def creator(key: str, *, verified: bool, email: bool) -> dict[str, Any]:
    return {
        "creator_key": key,
        "username": key,
        "verified": verified,
        "emails": [f"{key}@mail.example"] if email else [],
    }


# Inserts creators ``first`` .. ``first + n - 1`` of a job in one statement: every third one
# verified, every second one with an e-mail.
BULK = sa.text(
    "INSERT INTO scraping_job_creators (job_id, platform, creator_key, ordinal, creator)"
    " SELECT :job, 'tiktok', 'k' || i, i, jsonb_build_object('creator_key', 'k' || i,"
    " 'username', 'k' || i, 'verified', i % 3 = 0, 'emails', CASE WHEN i % 2 = 0 THEN jsonb_build_array('e@x.io')"
    " ELSE '[]'::jsonb END) FROM generate_series(:first, :first + :n - 1) AS i"
)


def bulk_counts(first: int, n: int) -> dict[tuple[bool, bool], int]:
    out: dict[tuple[bool, bool], int] = {}
    for i in range(first, first + n):
        key = (i % 3 == 0, i % 2 == 0)
        out[key] = out.get(key, 0) + 1
    return out


async def test_counts_follow_every_write_path(committed):
    async with AsyncSession(committed, expire_on_commit=False) as session, session.begin():
        user = await make_user(session)
        kept, dropped = await make_campaign(session, user), await make_campaign(session, user)
        job, other = await make_job(session, kept), await make_job(session, kept)
        doomed = await make_job(session, dropped)
        repo = JobRepository(session)
        # The workers' store statement, twice (the second repeats a key: deduped, not counted).
        await repo.store_creators(job.id, "tiktok", [
            ("a", creator("a", verified=True, email=True)),
            ("b", creator("b", verified=False, email=True)),
            ("c", creator("c", verified=False, email=False)),
        ], 1000)  # fmt: skip
        await repo.store_creators(job.id, "tiktok", [
            ("c", creator("c", verified=True, email=True)),
            ("d", creator("d", verified=False, email=False)),
        ], 1000)  # fmt: skip
        await session.execute(BULK, {"job": other.id, "first": 0, "n": 30})
        await session.execute(BULK, {"job": doomed.id, "first": 0, "n": 12})
    assert await counts(committed, job.id) == {(True, True): 1, (False, True): 1, (False, False): 2}
    assert await counts(committed, other.id) == bulk_counts(0, 30)
    assert await drift(committed) == 0

    # An update that moves a creator between combinations moves its count; deletes take theirs.
    async with committed.begin() as conn:
        await conn.execute(
            sa.text(
                "UPDATE scraping_job_creators SET creator = creator || '{\"verified\": true}'"
                " WHERE job_id = :job AND creator_key IN ('b', 'd')"
            ),
            {"job": job.id},
        )
        await conn.execute(
            sa.text("DELETE FROM scraping_job_creators WHERE job_id = :job AND ordinal < 6"),
            {"job": other.id},
        )
    assert await counts(committed, job.id) == {(True, True): 2, (True, False): 1, (False, False): 1}
    assert await counts(committed, other.id) == bulk_counts(6, 24)
    assert await drift(committed) == 0

    # A campaign's cascade, a job's delete and the user's delete leave no rows behind.
    async with committed.begin() as conn:
        await conn.execute(sa.delete(Campaign).where(Campaign.id == dropped.id))
    assert await counts(committed, doomed.id) == {}
    async with committed.begin() as conn:
        await conn.execute(sa.delete(ScrapingJob).where(ScrapingJob.id == other.id))
        await conn.execute(sa.delete(User).where(User.id == user.id))
    async with committed.connect() as conn:
        left = await conn.execute(
            sa.select(sa.func.count()).where(ScrapingJobFlagCount.job_id.in_([job.id, other.id]))
        )
        assert left.scalar_one() == 0
    assert await drift(committed) == 0


async def test_concurrent_writers_of_one_job_stay_exact(committed):
    async with AsyncSession(committed, expire_on_commit=False) as session, session.begin():
        job = await make_job(session, await make_campaign(session, await make_user(session)))

    async def insert(first: int) -> None:
        async with committed.begin() as conn:
            await conn.execute(BULK, {"job": job.id, "first": first, "n": 50})

    async def store(keys: list[str]) -> None:
        # As a worker does: under the job's row lock, overlapping keys deduped.
        async with AsyncSession(committed) as session, session.begin():
            await session.execute(
                sa.select(ScrapingJob.id).where(ScrapingJob.id == job.id).with_for_update()
            )
            await JobRepository(session).store_creators(job.id, "tiktok", [
                (k, creator(k, verified=len(k) % 2 == 0, email=True)) for k in keys
            ], 10_000)  # fmt: skip

    # Eight bulk writers of disjoint creators and six workers storing overlapping keys, all
    # on the same job's rows of the counts at once.
    await asyncio.gather(
        *(insert(1_000_000 + 50 * i) for i in range(8)),
        *(store([f"s{j}" for j in range(i, i + 10)]) for i in range(0, 30, 5)),
    )
    assert await drift(committed) == 0
    expected = bulk_counts(1_000_000, 400)
    stored = [f"s{j}" for j in range(35)]  # the union of the workers' keys
    for key in stored:
        combination = (len(key) % 2 == 0, True)
        expected[combination] = expected.get(combination, 0) + 1
    assert await counts(committed, job.id) == expected
