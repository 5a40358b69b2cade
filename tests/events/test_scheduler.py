"""The background-job scheduler: each due job runs once under concurrent runners, failures back
off and retry (transient ones without using up retries), recurring schedules keep exactly one live instance, and stale leases are reclaimed.
"""

import asyncio
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from shared.errors import DependencyUnavailable
from shared.scheduler import Job, JobRunner, Recurring, register_schedules, schedule_job

from .conftest import Counter, eventually


async def rows(engine: AsyncEngine, where: str = "true") -> list:
    async with engine.connect() as conn:
        result = await conn.execute(
            sa.text(
                "SELECT id, status, retry_count, scheduled_for, error, dedupe_key, schedule "
                f"FROM background_jobs WHERE {where} ORDER BY created_at"
            )
        )
        return result.all()


async def test_two_concurrent_runners_run_each_due_job_exactly_once(
    committed: AsyncEngine, counter: Counter
):
    async with committed.begin() as conn:
        for i in range(30):
            await schedule_job(conn, "billing", "tick", {"n": i})
        await schedule_job(conn, "billing", "tick", run_at=sa.func.now() + timedelta(hours=1))
    ran: list[int] = []

    async def tick(session: AsyncSession, job: Job) -> dict:
        ran.append(job.payload["n"])
        await counter.increment(session)
        await asyncio.sleep(0.01)
        return {"ok": True}

    async def drain(runner: JobRunner) -> None:
        while await runner.run_once():
            pass

    runners = [JobRunner(committed, "billing", {"tick": tick}, concurrency=3) for _ in range(2)]
    await asyncio.gather(*(drain(r) for r in runners))
    assert sorted(ran) == list(range(30))
    assert await counter.value() == 30
    statuses = [r.status for r in await rows(committed)]
    assert statuses.count("completed") == 30 and statuses.count("pending") == 1  # not yet due


async def test_a_failing_job_backs_off_retries_and_finally_fails(committed: AsyncEngine):
    async with committed.begin() as conn:
        flaky_id = await schedule_job(conn, "billing", "flaky")
        broken_id = await schedule_job(conn, "billing", "broken", max_retries=1)
    attempts = {"flaky": 0, "broken": 0}

    async def flaky(session: AsyncSession, job: Job) -> None:
        attempts["flaky"] += 1
        if attempts["flaky"] < 3:
            raise RuntimeError("bad state, fixed by the next run")  # permanent: counted

    async def broken(session: AsyncSession, job: Job) -> None:
        attempts["broken"] += 1
        raise ValueError("always")

    runner = JobRunner(
        committed, "billing", {"flaky": flaky, "broken": broken}, retry_base=timedelta(seconds=0.5)
    )
    assert await runner.run_once() == 2
    [flaky_row] = await rows(committed, f"id = '{flaky_id}'")
    async with committed.connect() as conn:
        # updated_at is the failing transaction's now(): the backoff is exactly retry_base.
        backoff = await conn.scalar(
            sa.text("SELECT scheduled_for - updated_at FROM background_jobs WHERE id = :id"),
            {"id": flaky_id},
        )
    assert flaky_row.status == "pending" and flaky_row.retry_count == 1
    assert backoff == timedelta(seconds=0.5)  # backed off, not retried hot
    assert await runner.run_once() == 0  # nothing is due during the backoff

    async def both_settled() -> bool:
        await runner.run_once()
        return attempts["flaky"] == 3 and attempts["broken"] == 2

    await eventually(both_settled)
    [flaky_row] = await rows(committed, f"id = '{flaky_id}'")
    [broken_row] = await rows(committed, f"id = '{broken_id}'")
    assert (flaky_row.status, flaky_row.retry_count) == ("completed", 2)
    assert (broken_row.status, broken_row.retry_count) == ("failed", 2)
    assert "ValueError: always" in broken_row.error


async def test_transient_failures_are_retried_with_capped_backoff_and_never_use_up_retries(
    committed: AsyncEngine, counter: Counter
):
    async with committed.begin() as conn:
        job_id = await schedule_job(conn, "billing", "ask-billing", max_retries=0)
    calls = 0

    async def ask_billing(session: AsyncSession, job: Job) -> None:
        nonlocal calls
        calls += 1
        if calls <= 4:  # more failures than max_retries allows: all of them transient
            raise DependencyUnavailable("billing.usage.release did not answer")
        await counter.increment(session)

    runner = JobRunner(
        committed, "billing", {"ask-billing": ask_billing},
        transient_retry_base=timedelta(seconds=0.05), transient_retry_max=timedelta(seconds=0.1),
    )  # fmt: skip
    assert await runner.run_once() == 1
    [row] = await rows(committed, f"id = '{job_id}'")
    assert (row.status, row.retry_count) == ("pending", 0)
    assert "DependencyUnavailable" in row.error

    async def done() -> bool:
        await runner.run_once()
        return await counter.value() == 1

    await eventually(done)
    [row] = await rows(committed, f"id = '{job_id}'")
    assert (row.status, row.retry_count, calls) == ("completed", 0, 5)


async def test_a_recurring_job_keeps_exactly_one_live_instance(committed: AsyncEngine):
    nightly = Recurring(name="usage-reset", cron="0 3 * * *", job_type="reset")
    await asyncio.gather(*(register_schedules(committed, "billing", [nightly]) for _ in range(3)))
    [pending] = await rows(committed)
    assert (pending.status, pending.dedupe_key, pending.schedule) == (
        "pending", "billing:usage-reset", "0 3 * * *",
    )  # fmt: skip
    assert (pending.scheduled_for.hour, pending.scheduled_for.minute) == (3, 0)

    runs = 0

    async def reset(session: AsyncSession, job: Job) -> None:
        nonlocal runs
        runs += 1

    async with committed.begin() as conn:  # it is 3 o'clock somewhere: make it due
        await conn.execute(sa.text("UPDATE background_jobs SET scheduled_for = now()"))
    runner = JobRunner(committed, "billing", {"reset": reset})
    assert await runner.run_once() == 1
    assert await runner.run_once() == 0
    done, following = await rows(committed)
    assert runs == 1 and done.status == "completed"
    assert following.status == "pending" and following.dedupe_key == "billing:usage-reset"
    assert following.scheduled_for > done.scheduled_for

    await register_schedules(committed, "billing", [nightly])  # a worker restarts: no new row
    assert len(await rows(committed)) == 2


async def test_a_job_whose_lease_expired_is_reclaimed_and_the_stale_run_rolls_back(
    committed: AsyncEngine, counter: Counter
):
    async with committed.begin() as conn:
        await schedule_job(conn, "billing", "work")

    async def work(session: AsyncSession, job: Job) -> None:
        await counter.increment(session)

    stale = JobRunner(committed, "billing", {"work": work}, lease=timedelta(seconds=0.2))
    [job] = await stale.claim()  # …and then this worker hangs
    await asyncio.sleep(0.3)
    fresh = JobRunner(committed, "billing", {"work": work})
    assert await fresh.run_once() == 1
    assert await stale.execute(job) is False  # its late commit finds the lease gone
    assert await counter.value() == 1
    [row] = await rows(committed)
    assert row.status == "completed"
