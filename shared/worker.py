"""The worker process every service runs: relay, consumers, request/reply servers, scheduler.

A service describes its worker with a ``build(ctx) -> WorkerSpec`` function in
``services/<name>/worker.py``; :func:`run_worker` provides the connections, runs every part as
its own task, and stops them cleanly (in-flight work finishes, NATS is drained) on ``stop``.

The kernel adds to every worker: one database health gate shared by all parts (an outage is
waited out, not burned through), the delivery settings (``EVENTS_RETRY_MAX_SECONDS``,
``EVENTS_MAX_ATTEMPTS``), the retention job for the service's own rows, and, when
``WORKER_METRICS_PORT`` is set, the metrics/health server.
"""

import asyncio
import contextlib
import functools
import importlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from nats.aio.client import Client as NATS
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.errors import ServiceUnavailableError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from shared import retention
from shared.db import engine_for, session_factory
from shared.events import rpc as rpc_
from shared.events.consumer import Consumer, Handler
from shared.events.health import DatabaseHealth
from shared.events.relay import Relay
from shared.events.streams import connect, ensure_streams
from shared.metrics import observe_worker
from shared.runtime import start_runtime
from shared.scheduler import JobHandler, JobRunner, Recurring, register_schedules
from shared.settings import Settings, get_settings

log = logging.getLogger("scout.worker")

SERVICES = ("identity", "billing", "campaign", "scraping")

# JetStream answers its API late or not at all while a cluster elects leaders and places
# replicas (a fresh three-node cluster with every worker starting at once): creating streams
# and durables waits that out with capped backoff instead of failing the process, whose
# restart would only queue behind the same cluster (and behind the restart policy's backoff).
TRANSIENT_NATS = (NatsTimeout, NoRespondersError, ServiceUnavailableError)
PROVISION_FIRST_DELAY_S = 0.5
PROVISION_MAX_DELAY_S = 5.0


@dataclass
class WorkerContext:
    """What a service's ``build`` gets: its settings and live connections."""

    service: str
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    nc: NATS
    js: JetStreamContext
    health: DatabaseHealth

    @property
    def prefix(self) -> str:
        return self.settings.scout_nats_prefix


@dataclass
class ConsumerSpec:
    """One durable consumer: handlers for subjects of one stream, plus Consumer options."""

    name: str
    handlers: Mapping[str, Handler]
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class WorkerSpec:
    consumers: list[ConsumerSpec] = field(default_factory=list)
    rpc: Mapping[str, rpc_.RpcHandler] = field(default_factory=dict)
    jobs: Mapping[str, JobHandler] = field(default_factory=dict)
    schedules: list[Recurring] = field(default_factory=list)
    # Extra long-running loops (e.g. a work-queue consumer); each is cancelled on stop.
    tasks: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    scheduler_options: dict[str, Any] = field(default_factory=dict)
    relay: bool = True


Build = Callable[[WorkerContext], WorkerSpec | Awaitable[WorkerSpec]]


def load_build(service: str) -> Build:
    if service not in SERVICES:
        raise ValueError(f"unknown service {service!r}; one of {', '.join(SERVICES)}")
    return importlib.import_module(f"services.{service}.worker").build


async def run_worker(
    service: str,
    *,
    settings: Settings | None = None,
    build: Build | None = None,
    stop: asyncio.Event | None = None,
    ready: asyncio.Event | None = None,
) -> None:
    """Run ``service``'s worker until ``stop`` is set (or forever)."""
    settings = settings or get_settings()
    build = build or load_build(service)
    stop = stop or asyncio.Event()
    engine = engine_for(settings, application_name=f"scout-{service}-worker")
    health = DatabaseHealth(engine, name=f"{service}-worker")
    nc = await connect(settings.nats_url, name=f"scout-{service}-worker")
    try:
        js = nc.jetstream()
        streams = functools.partial(
            ensure_streams,
            js,
            settings.scout_nats_prefix,
            replicas=settings.nats_stream_replicas,
            max_age=settings.nats_stream_max_age_days * retention.SECONDS_PER_DAY,
        )
        if not await provision(streams, "streams", stop):
            return
        ctx = WorkerContext(service, settings, engine, session_factory(engine), nc, js, health)
        spec = build(ctx)
        if asyncio.iscoroutine(spec):
            spec = await spec
        await _run(ctx, spec, stop, ready)
    finally:
        if not nc.is_closed:
            # Every part has stopped and settled its messages by now; flush the last acks and
            # close. (drain() would wait on the pull subscriptions' inboxes until it times out.)
            with contextlib.suppress(Exception):
                await nc.flush(timeout=2)
            await nc.close()
        health.close()
        await engine.dispose()


async def provision(
    step: Callable[[], Awaitable[Any]],
    what: str,
    stop: asyncio.Event,
    *,
    first_delay: float = PROVISION_FIRST_DELAY_S,
    max_delay: float = PROVISION_MAX_DELAY_S,
) -> bool:
    """Run ``step`` until it succeeds (True), retrying while JetStream is not answering yet;
    False if ``stop`` is set first. Any other error is raised: a refused configuration does
    not fix itself."""
    delay = first_delay
    while not stop.is_set():
        try:
            await step()
            return True
        except TRANSIENT_NATS as exc:
            log.warning(
                "worker.provision_retry",
                extra={"step": what, "error": repr(exc), "retry_in_s": delay},
            )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)
        delay = min(max_delay, delay * 2)
    return False


async def _run(
    ctx: WorkerContext, spec: WorkerSpec, stop: asyncio.Event, ready: asyncio.Event | None
) -> None:
    prefix, settings = ctx.prefix, ctx.settings
    retry_max = settings.events_retry_max_seconds
    relay = (
        Relay(ctx.engine, ctx.js, ctx.service, prefix=prefix, max_backoff=retry_max,
              health=ctx.health)
        if spec.relay
        else None
    )  # fmt: skip
    consumers = [
        Consumer(
            ctx.engine,
            ctx.js,
            service=ctx.service,
            name=c.name,
            handlers=c.handlers,
            prefix=prefix,
            **({"max_attempts": settings.events_max_attempts, "retry_max": retry_max} | c.options),
            health=ctx.health,
        )
        for c in spec.consumers
    ]
    for consumer in consumers:
        if not await provision(consumer.ensure, consumer.durable, stop):
            return
    # Every worker process (not one per durable) applies platform.*.changed: see shared.runtime.
    runtime = await start_runtime(
        ctx.service, role="worker", engine=ctx.engine, nats=lambda: ctx.nc, prefix=prefix
    )
    subscriptions = [
        await rpc_.serve(ctx.nc, subject, handler, prefix=prefix, health=ctx.health)
        for subject, handler in spec.rpc.items()
    ]
    # Every worker prunes its own service's rows that would otherwise grow forever.
    jobs = {
        **spec.jobs,
        retention.JOB_TYPE: retention.retention_job(ctx.engine, ctx.service, settings),
    }
    await register_schedules(
        ctx.engine, ctx.service, [*spec.schedules, retention.retention_schedule(settings)]
    )
    runner = JobRunner(
        ctx.engine, ctx.service, jobs,
        **({"transient_retry_max": timedelta(seconds=retry_max)} | spec.scheduler_options),
        health=ctx.health,
    )  # fmt: skip

    stoppable: list[Any] = [p for p in (relay, runner, *consumers) if p is not None]
    tasks = [asyncio.create_task(p.run(), name=type(p).__name__) for p in stoppable]
    extra = [asyncio.create_task(fn(), name=getattr(fn, "__name__", "task")) for fn in spec.tasks]
    log.info(
        "worker.started",
        extra={
            "service": ctx.service,
            "consumers": [c.durable for c in consumers],
            "rpc": list(spec.rpc),
            "jobs": list(jobs),
        },
    )
    if settings.worker_metrics_port:
        extra.append(
            asyncio.create_task(
                observe_worker(ctx.service, settings, ctx.engine, ctx.nc, ctx.health),
                name="metrics",
            )
        )
    if ready is not None:
        ready.set()
    waiter = asyncio.create_task(stop.wait())
    try:
        done, _ = await asyncio.wait([waiter, *tasks, *extra], return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if task is waiter:
                continue
            if task.exception():  # a part died: fail loudly
                raise task.exception()
            if not stop.is_set():  # a part left its loop unasked: the worker is not whole
                log.error("worker.part_ended", extra={"part": task.get_name()})
                raise RuntimeError(f"worker part {task.get_name()} ended without a stop")
    finally:
        waiter.cancel()
        for sub in subscriptions:
            await sub.unsubscribe()
        await runtime.stop()
        for part in stoppable:
            part.stop()
        for task in extra:
            task.cancel()
        await asyncio.gather(*tasks, *extra, return_exceptions=True)
        log.info("worker.stopped", extra={"service": ctx.service})
