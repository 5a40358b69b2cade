"""Scheduled work on ``background_jobs``: one-off and recurring (cron) jobs, one runner per worker.

Jobs are claimed with ``FOR UPDATE SKIP LOCKED`` and a lease (``locked_until``); a handler runs in
one transaction with the job's completion, so its effects commit only if the lease was still
ours. A permanent failure retries with exponential backoff up to ``max_retries``, then the job
is ``failed``. A transient one (a dependency away, see ``shared.events.failures``) is retried
with backoff capped at ``transient_retry_max`` and never counts against ``max_retries``; while
the database is unreachable the runner claims nothing and waits on the process's health gate.
"""

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from croniter import croniter
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from shared.events.failures import is_transient
from shared.events.health import DatabaseHealth
from shared.models.enums import BackgroundJobStatus as Status
from shared.models.messaging import BackgroundJob

log = logging.getLogger(__name__)

jobs: sa.Table = BackgroundJob.__table__  # type: ignore[assignment]
_j = jobs.c
_LIVE = sa.text("status IN ('pending', 'processing')")  # the dedupe index's predicate


@dataclass(frozen=True)
class Job:
    """What a handler sees of its job."""

    id: uuid.UUID
    job_type: str
    payload: dict[str, Any]
    retry_count: int
    max_retries: int
    priority: int
    scheduled_for: datetime
    schedule: str | None
    dedupe_key: str | None
    locked_until: datetime  # the lease: our claim is valid while the row still carries it


JobHandler = Callable[[AsyncSession, Job], Awaitable[dict[str, Any] | None]]


@dataclass(frozen=True)
class Recurring:
    """A recurring schedule; its dedupe key ``<service>:<name>`` keeps one live instance."""

    name: str
    cron: str  # five-field cron in UTC (a sixth field, seconds, for sub-minute schedules)
    job_type: str
    payload: dict[str, Any] = field(default_factory=dict)
    priority: int = 100
    max_retries: int = 3


class LeaseLost(RuntimeError):
    """The job was reclaimed by another runner while this one ran it; its work is rolled back."""


def next_run(cron: str, after: datetime | None = None) -> datetime:
    """The first occurrence of ``cron`` strictly after ``after`` (default: now, UTC)."""
    if not croniter.is_valid(cron):
        raise ValueError(f"not a cron expression: {cron!r}")
    return croniter(cron, after or datetime.now(UTC)).get_next(datetime)


async def schedule_job(
    session: AsyncSession | AsyncConnection,
    service: str,
    job_type: str,
    payload: dict[str, Any] | None = None,
    *,
    run_at: datetime | None = None,
    dedupe_key: str | None = None,
    schedule: str | None = None,
    priority: int = 100,
    max_retries: int = 3,
) -> uuid.UUID | None:
    """Insert a job in the caller's transaction; ``None`` if a live job has ``dedupe_key``."""
    values: dict[str, Any] = dict(
        service=service, job_type=job_type, payload=payload or {}, dedupe_key=dedupe_key,
        schedule=schedule, priority=priority, max_retries=max_retries,
    )  # fmt: skip
    if run_at is not None:
        values["scheduled_for"] = run_at
    # Never check-then-insert: two workers registering the same schedule at start-up race,
    # and the partial unique index on live rows lets exactly one insert win.
    return await session.scalar(
        pg_insert(jobs)
        .values(id=uuid.uuid4(), **values)
        .on_conflict_do_nothing(index_elements=["dedupe_key"], index_where=_LIVE)
        .returning(_j.id)
    )


async def register_schedules(
    engine: AsyncEngine, service: str, schedules: Iterable[Recurring]
) -> None:
    """Ensure each recurring schedule has its one live instance (idempotent, at worker start)."""
    async with engine.begin() as conn:
        for s in schedules:
            key, first = f"{service}:{s.name}", next_run(s.cron)
            created = await schedule_job(
                conn, service, s.job_type, s.payload, run_at=first, dedupe_key=key,
                schedule=s.cron, priority=s.priority, max_retries=s.max_retries,
            )  # fmt: skip
            if created is None:  # it exists; a changed cron re-times the pending instance
                await conn.execute(
                    jobs.update()
                    .where(_j.dedupe_key == key, _j.status == Status.pending)
                    .where(_j.schedule.is_distinct_from(s.cron))
                    .values(schedule=s.cron, scheduled_for=first)
                )


class JobRunner:
    """Claims and runs due jobs of one service; any number of runners may run at once."""

    def __init__(
        self,
        engine: AsyncEngine,
        service: str,
        handlers: Mapping[str, JobHandler],
        *,
        lease: timedelta = timedelta(minutes=10),
        concurrency: int = 4,
        poll_interval: float = 1.0,
        retry_base: timedelta = timedelta(seconds=30),
        retry_max: timedelta = timedelta(hours=1),
        transient_retry_base: timedelta = timedelta(seconds=1),
        transient_retry_max: timedelta = timedelta(seconds=30),
        health: DatabaseHealth | None = None,
    ) -> None:
        self.engine, self.service, self.handlers = engine, service, dict(handlers)
        self.lease, self.concurrency, self.poll_interval = lease, concurrency, poll_interval
        self.retry_base, self.retry_max = retry_base, retry_max
        self.transient_retry_base = transient_retry_base
        self.transient_retry_max = transient_retry_max
        self.health = health or DatabaseHealth(engine, name=f"{service}-scheduler")
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        self._stopping = asyncio.Event()
        # Consecutive transient failures per job (for the backoff only; kept in memory, as a
        # restart merely starts the backoff over).
        self._transient: dict[uuid.UUID, int] = {}
        self._retrying: set[uuid.UUID] = set()

    async def claim(self, limit: int | None = None) -> list[Job]:
        """Lease up to ``limit`` due jobs (reclaiming those whose runner vanished)."""
        now = sa.func.now()
        async with self.engine.begin() as conn:
            # A runner that died mid-job leaves it 'processing'; once its lease has expired
            # the job goes back to pending (its late commit, if any, will find the lease gone).
            await conn.execute(
                jobs.update()
                .where(_j.service == self.service, _j.status == Status.processing)
                .where(_j.locked_until < now)
                .values(status=Status.pending, locked_until=None, error="lease expired")
            )
            due = (
                sa.select(_j.id)
                .where(_j.service == self.service, _j.status == Status.pending)
                .where(_j.scheduled_for <= now, _j.job_type.in_(list(self.handlers)))
                .order_by(_j.priority, _j.scheduled_for)
                .limit(limit or self.concurrency)
                # SKIP LOCKED: concurrent runners take disjoint jobs instead of queueing behind
                # each other, and none can claim a row another is claiming (each runs once).
                .with_for_update(skip_locked=True)
            ).subquery()
            rows = await conn.execute(
                jobs.update()
                .where(_j.id == due.c.id)
                .values(
                    status=Status.processing,
                    locked_until=now + self.lease,
                    started_at=now,
                )
                .returning(*(getattr(_j, f) for f in Job.__dataclass_fields__))
            )
            return [Job(**row._mapping) for row in rows]

    async def execute(self, job: Job) -> bool:
        """Run one claimed job: completion (and the next occurrence) commit with its effects."""
        try:
            async with self._sessions() as session, session.begin():
                result = await self.handlers[job.job_type](session, job)
                if not await self._settle(
                    session, job, status=Status.completed, completed_at=sa.func.now(),
                    result=result, error=None,
                ):  # fmt: skip
                    raise LeaseLost(f"job {job.id} was reclaimed while it ran")
                if job.schedule:
                    await self._schedule_next(session, job)
            return True
        except LeaseLost as exc:
            log.warning("scheduler.lease_lost", extra={"job_id": str(job.id), "error": str(exc)})
            return False
        except Exception as exc:
            await self._failed(job, exc)
            return False
        finally:
            if job.id not in self._retrying:  # done or failed for good: forget its backoff
                self._transient.pop(job.id, None)
            self._retrying.discard(job.id)

    async def _failed(self, job: Job, exc: Exception) -> None:
        """Put the job back for a later try (or fail it); waits out a database outage to say so."""
        while not self._stopping.is_set():
            try:
                if is_transient(exc):
                    await self._transient_failure(job, exc)
                else:
                    await self._permanent_failure(job, exc)
                return
            except Exception as write_error:  # the database is away: the lease is still ours
                if not self.health.report(write_error):
                    log.warning(
                        "scheduler.settle_failed",
                        extra={"job_id": str(job.id), "error": repr(write_error)},
                    )
                    return  # the lease expires and the job is claimed again
                await self.health.wait(self._stopping)

    async def _transient_failure(self, job: Job, exc: Exception) -> None:
        self.health.report(exc)
        n = self._transient.get(job.id, 0) + 1
        delay = min(self.transient_retry_max, self.transient_retry_base * 2 ** (n - 1))
        error = f"{type(exc).__name__}: {exc}"[:5000]
        log.warning(
            "scheduler.job_retry",
            extra={"job_id": str(job.id), "error": error, "delay_s": delay.total_seconds()},
        )
        async with self._sessions() as session, session.begin():
            await self._settle(
                session, job, status=Status.pending, error=error,
                scheduled_for=sa.func.now() + delay,
            )  # fmt: skip
        if len(self._transient) > 10_000:  # jobs another runner finished: start over
            self._transient.clear()
        self._transient[job.id] = n
        self._retrying.add(job.id)  # keep the count for the next run of this job

    async def _permanent_failure(self, job: Job, exc: Exception) -> None:
        attempt, error = job.retry_count + 1, f"{type(exc).__name__}: {exc}"[:5000]
        log.warning("scheduler.job_failed", extra={"job_id": str(job.id), "error": error})
        async with self._sessions() as session, session.begin():
            if attempt > job.max_retries:
                gave_up = await self._settle(
                    session, job, status=Status.failed, failed_at=sa.func.now(),
                    retry_count=attempt, error=error,
                )  # fmt: skip
                if gave_up and job.schedule:  # a failed run must not end the schedule
                    await self._schedule_next(session, job)
            else:
                delay = min(self.retry_max, self.retry_base * 2 ** (attempt - 1))
                await self._settle(
                    session, job, status=Status.pending, retry_count=attempt, error=error,
                    scheduled_for=sa.func.now() + delay,
                )  # fmt: skip

    async def _settle(self, session: AsyncSession, job: Job, **values: Any) -> bool:
        """Update the job only if our lease still holds; False when another runner took it."""
        done = await session.execute(
            jobs.update()
            .where(_j.id == job.id, _j.status == Status.processing)
            .where(_j.locked_until == job.locked_until)
            .values(locked_until=None, **values)
            .returning(_j.id)
        )
        return done.first() is not None

    async def _schedule_next(self, session: AsyncSession, job: Job) -> None:
        # Same transaction as the settle above, which took this row out of the live set:
        # the dedupe index then admits exactly this one next instance.
        await schedule_job(
            session, self.service, job.job_type, job.payload, run_at=next_run(job.schedule or ""),
            dedupe_key=job.dedupe_key, schedule=job.schedule, priority=job.priority,
            max_retries=job.max_retries,
        )  # fmt: skip

    async def run_once(self) -> int:
        """Claim one round of due jobs and run them concurrently; returns how many ran."""
        claimed = await self.claim()
        await asyncio.gather(*(self.execute(job) for job in claimed))
        return len(claimed)

    async def run(self) -> None:
        """Run due jobs until :meth:`stop`, polling every ``poll_interval`` when idle."""
        while not self._stopping.is_set():
            if not await self.health.wait(self._stopping):
                break
            try:
                ran = await self.run_once()
            except Exception as exc:
                if self.health.report(exc):
                    continue  # Postgres away: the gate says when it is back
                log.warning("scheduler.claim_failed", extra={"error": repr(exc)})
                ran = 0
            if not ran:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), self.poll_interval)

    def stop(self) -> None:
        self._stopping.set()
