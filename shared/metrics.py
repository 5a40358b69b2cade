"""Prometheus metrics for workers: outbox lag, consumer lag, dead letters, job states,
reservations, user deletions still waiting on a service.

The HTTP latency histogram lives with the APIs (``shared.web``). A worker samples the rest from
the source of truth — the database and JetStream — every few seconds (``sample_forever``) and
serves them on ``WORKER_METRICS_PORT`` (``serve``) beside ``/healthz`` and ``/readyz`` probes.
Sampling reads what is true rather than counting in the hot path, so several worker replicas
report the same numbers, not partial ones. ``/readyz`` is :class:`WorkerReadiness`: NATS
connected and the database heartbeat fresh.
"""

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import sqlalchemy as sa
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from prometheus_client import Gauge, make_wsgi_app
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.events.envelope import stream_name
from shared.events.health import DatabaseHealth, Heartbeat
from shared.events.streams import STREAMS
from shared.models.enums import Service
from shared.settings import Settings

log = logging.getLogger("scout.metrics")

OUTBOX_UNPUBLISHED = Gauge(
    "scout_outbox_unpublished_events", "Events written but not yet published to NATS.", ["service"]
)
OUTBOX_LAG = Gauge(
    "scout_outbox_lag_seconds",
    "Age of the oldest unpublished event (0 when the outbox is empty).",
    ["service"],
)
CONSUMER_PENDING = Gauge(
    "scout_consumer_pending_messages",
    "Messages in the stream not yet delivered to the durable consumer.",
    ["service", "consumer", "stream"],
)
CONSUMER_ACK_PENDING = Gauge(
    "scout_consumer_ack_pending_messages",
    "Messages delivered to the consumer and not yet acknowledged.",
    ["service", "consumer", "stream"],
)
DEAD_LETTERS = Gauge(
    "scout_dead_letters",
    "Dead letters by status (pending ones need attention).",
    ["service", "status"],
)
BACKGROUND_JOBS = Gauge(
    "scout_background_jobs", "Scheduled jobs by type and state.", ["service", "job_type", "status"]
)
SEARCH_JOBS = Gauge("scout_search_jobs", "Scraping (search) jobs by state.", ["status"])
RESERVATIONS = Gauge(
    "scout_usage_reservations",
    "Usage reservations by resource and outcome (reserved, confirmed, released, expired).",
    ["resource", "status"],
)
USER_DELETIONS_PENDING = Gauge(
    "scout_user_deletions_pending",
    "Deleted users whose data this service has not yet purged (served by the identity worker).",
    ["service"],
)
USER_DELETION_OLDEST_PENDING = Gauge(
    "scout_user_deletion_oldest_pending_seconds",
    "Age of the oldest deletion this service has not yet purged (0 when none is pending).",
    ["service"],
)
SAMPLE_SECONDS = Gauge(
    "scout_metrics_sample_duration_seconds", "How long the last metrics sample took.", ["service"]
)
DATABASE_UP = Gauge(
    "scout_worker_database_up",
    "1 while the worker's database health gate is open; 0 while it waits out an outage.",
    ["service"],
)

_OUTBOX = sa.text(
    "SELECT count(*), coalesce(extract(epoch FROM now() - min(created_at)), 0) "
    "FROM events_pending WHERE service = :service"
)
_DEAD = sa.text(
    "SELECT status, count(*) FROM dead_letters WHERE service = :service GROUP BY status"
)
_JOBS = sa.text(
    "SELECT job_type, status, count(*) FROM background_jobs WHERE service = :service "
    "GROUP BY job_type, status"
)
_SEARCH = sa.text("SELECT status, count(*) FROM scraping_jobs GROUP BY status")
_DELETIONS = sa.text(
    "SELECT service, count(*), extract(epoch FROM now() - min(created_at))"
    " FROM user_deletion_steps WHERE applied_at IS NULL GROUP BY service"
)
# Services that purge a deleted user's data: each always has a pending-deletions figure.
_PURGING = tuple(s.value for s in Service if s is not Service.identity)
_RESERVATIONS = sa.text(
    "SELECT resource, status, count(*) FROM usage_reservations GROUP BY resource, status"
)


def _reset_labels(gauge: Gauge, keep: set[tuple[str, ...]], first: str | None = None) -> None:
    """Drop label sets that vanished since the last sample (e.g. a status that emptied)."""
    for labels in list(gauge._metrics):  # prometheus_client keeps children by label tuple
        if labels not in keep and (first is None or labels[0] == first):
            gauge.remove(*labels)


async def sample_database(engine: AsyncEngine, service: str) -> None:
    async with engine.connect() as conn:
        count, lag = (await conn.execute(_OUTBOX, {"service": service})).one()
        OUTBOX_UNPUBLISHED.labels(service).set(count)
        OUTBOX_LAG.labels(service).set(float(lag))

        seen: set[tuple[str, ...]] = set()
        for status, n in await conn.execute(_DEAD, {"service": service}):
            DEAD_LETTERS.labels(service, status).set(n)
            seen.add((service, status))
        _reset_labels(DEAD_LETTERS, seen, service)

        seen = set()
        for job_type, status, n in await conn.execute(_JOBS, {"service": service}):
            BACKGROUND_JOBS.labels(service, job_type, status).set(n)
            seen.add((service, job_type, status))
        _reset_labels(BACKGROUND_JOBS, seen, service)

        if service == "scraping":
            seen = set()
            for status, n in await conn.execute(_SEARCH):
                SEARCH_JOBS.labels(status).set(n)
                seen.add((status,))
            _reset_labels(SEARCH_JOBS, seen)
        if service == "identity":
            pending = {svc: (0, 0.0) for svc in _PURGING}
            for svc, n, age in await conn.execute(_DELETIONS):
                pending[svc] = (n, float(age))
            for svc, (n, age) in pending.items():
                USER_DELETIONS_PENDING.labels(svc).set(n)
                USER_DELETION_OLDEST_PENDING.labels(svc).set(age)
        if service == "billing":
            seen = set()
            for resource, status, n in await conn.execute(_RESERVATIONS):
                RESERVATIONS.labels(resource, status).set(n)
                seen.add((resource, status))
            _reset_labels(RESERVATIONS, seen)


async def sample_consumers(js: JetStreamContext, service: str, prefix: str) -> None:
    """Lag of this service's durable consumers (named ``<service>_<name>``) on every stream."""
    for spec in STREAMS.values():
        stream = stream_name(spec.name, prefix)
        try:
            consumers = await js.consumers_info(stream)
        except Exception:  # stream not provisioned yet: nothing to report
            continue
        for info in consumers:
            if not info.name.startswith(f"{service}_"):
                continue
            CONSUMER_PENDING.labels(service, info.name, stream).set(info.num_pending or 0)
            CONSUMER_ACK_PENDING.labels(service, info.name, stream).set(info.num_ack_pending or 0)


async def sample_once(
    engine: AsyncEngine, js: JetStreamContext | None, service: str, prefix: str
) -> None:
    start = time.perf_counter()
    await sample_database(engine, service)
    if js is not None:
        await sample_consumers(js, service, prefix)
    SAMPLE_SECONDS.labels(service).set(time.perf_counter() - start)


async def sample_forever(
    engine: AsyncEngine,
    js: JetStreamContext | None,
    service: str,
    prefix: str,
    *,
    interval: float = 5.0,
    health: DatabaseHealth | None = None,
) -> None:
    """Refresh the gauges every ``interval`` seconds; a failed sample is logged, never fatal.
    While ``health`` says the database is away, sampling waits (it would only fail)."""
    while True:
        if health is not None:
            DATABASE_UP.labels(service).set(1 if health.healthy else 0)
        if health is None or health.healthy:
            try:
                await sample_once(engine, js, service, prefix)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if health is not None:
                    health.report(exc)
                log.warning("metrics.sample_failed", extra={"service": service, "error": str(exc)})
        await asyncio.sleep(interval)


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args) -> None:  # probes every few seconds: no noise
        pass


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


def health_app(ready: Callable[[], bool]):
    """``/metrics`` (Prometheus), ``/healthz`` (alive) and ``/readyz`` (``ready()``) as WSGI."""
    metrics_app = make_wsgi_app()

    def app(environ, start_response):
        path = environ.get("PATH_INFO", "/")
        if path in ("/healthz", "/readyz"):
            ok = path == "/healthz" or ready()
            status = "200 OK" if ok else "503 Service Unavailable"
            body = b'{"status": "ok"}' if ok else b'{"status": "unavailable"}'
            start_response(status, [("Content-Type", "application/json")])
            return [body]
        return metrics_app(environ, start_response)

    return app


def serve(port: int, host: str = "0.0.0.0", ready: Callable[[], bool] = lambda: True):
    """Serve metrics and health on ``host:port`` from a daemon thread; returns the server."""
    server = make_server(host, port, health_app(ready), _Server, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name="metrics-http", daemon=True).start()
    return server


@contextlib.contextmanager
def serving(port: int | None, host: str, ready: Callable[[], bool] = lambda: True):
    server = serve(port, host, ready) if port else None
    try:
        yield server
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()


class WorkerReadiness:
    """``/readyz`` of a worker: NATS connected and the database heartbeat fresh (the gate open
    and a ``SELECT 1`` answered within the last second, see :class:`Heartbeat`).

    Called from the metrics server's thread; it only reads what the heartbeat, beating on the
    worker's event loop, last saw, so an answer never waits on the database.
    """

    def __init__(self, heartbeat: Heartbeat, connected: Callable[[], bool]) -> None:
        self.heartbeat, self.connected = heartbeat, connected

    def __call__(self) -> bool:
        return self.connected() and self.heartbeat.fresh()


async def observe_worker(
    service: str, settings: Settings, engine: AsyncEngine, nc: NATS, health: DatabaseHealth
) -> None:
    """Serve ``WORKER_METRICS_PORT`` (metrics, /healthz, /readyz) and keep the gauges fresh."""
    heartbeat = Heartbeat(health)
    await heartbeat.start()
    readiness = WorkerReadiness(heartbeat, lambda: nc.is_connected)
    try:
        with serving(settings.worker_metrics_port, settings.worker_metrics_host, readiness):
            await sample_forever(
                engine, nc.jetstream(), service, settings.scout_nats_prefix, health=health
            )
    finally:
        await heartbeat.stop()
