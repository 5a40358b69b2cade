"""What stalls an API process, as Prometheus metrics: event-loop lag, GC pauses, the pool.

A request's tail latency under concurrency comes from time the event loop could not serve it:
a callback that ran long (CPU work, a blocking call), a garbage collection pausing the whole
process, or waiting for a pooled connection. Each is measured where it happens:

* ``scout_event_loop_lag_seconds``: a task asks to wake every ``LAG_INTERVAL`` and records how
  late it woke — the delay every request ready at that moment also saw;
* ``scout_gc_pause_seconds``: every collection, timed from ``gc.callbacks``, by generation;
* ``scout_db_pool_checked_out``: the engine's connections in use (its SQLAlchemy pool and its
  ``ReadPool`` together), sampled with the lag (beside ``scout_db_pool_size``: a pool too small
  for the concurrency shows as a full pool).

``tests/bench/bench_http.py`` reads them from ``/metrics`` after each slice of load, so the
tail it reports stands beside what caused it.

``tune_gc`` (applied at startup) is what the measurement led to: the objects alive after
startup (modules, models, compiled statements, the app) are frozen out of the collector, and
the young generation is collected less often, so a full collection does not walk the whole
heap while requests wait.
"""

import asyncio
import contextlib
import gc
import time
from collections.abc import AsyncIterator

from prometheus_client import Gauge, Histogram
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db import read_pool

LAG_INTERVAL = 0.02  # seconds between wake-ups (50 samples a second: ~20 µs of CPU a second)
# Young-generation threshold: CPython's default 700 collects every few requests.
GC_THRESHOLD = (50_000, 20, 100)

_LAG_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
LOOP_LAG = Histogram(
    "scout_event_loop_lag_seconds",
    "How late the event loop ran a timer (a stall every ready request also waited through).",
    ["service"],
    buckets=_LAG_BUCKETS,
)
GC_PAUSE = Histogram(
    "scout_gc_pause_seconds",
    "Garbage-collection pauses of this process by generation.",
    ["generation"],
    buckets=_LAG_BUCKETS,
)
POOL_CHECKED_OUT = Histogram(
    "scout_db_pool_checked_out",
    "Database connections in use, sampled with the event-loop lag (against scout_db_pool_size).",
    ["service"],
    buckets=(0, 1, 2, 4, 8, 12, 16, 20, 32, 64),
)
POOL_SIZE = Gauge("scout_db_pool_size", "Database connections the pool may hold.", ["service"])

_gc_started: float | None = None


def _on_gc(phase: str, info: dict) -> None:
    global _gc_started
    if phase == "start":
        _gc_started = time.perf_counter()
    elif _gc_started is not None:
        GC_PAUSE.labels(str(info["generation"])).observe(time.perf_counter() - _gc_started)
        _gc_started = None


def watch_gc() -> None:
    """Time every collection of this process (idempotent)."""
    if _on_gc not in gc.callbacks:
        gc.callbacks.append(_on_gc)


_tuned = False


def tune_gc() -> None:
    """Freeze what startup built out of the collector and collect the young generation less
    often (see the module docstring; ``bench_http`` shows the effect on the tail). Once per
    process: a second app in the same process (tests) leaves it as it is."""
    global _tuned
    if _tuned:
        return
    _tuned = True
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)


@contextlib.asynccontextmanager
async def monitoring(service: str, engine: AsyncEngine) -> AsyncIterator[None]:
    """Sample event-loop lag and pool use while the app runs."""
    watch_gc()
    lag, in_use = LOOP_LAG.labels(service), POOL_CHECKED_OUT.labels(service)
    pool, reads = engine.sync_engine.pool, read_pool(engine)
    POOL_SIZE.labels(service).set(pool.size() + (reads.size if reads else 0))

    async def sample() -> None:
        while True:
            expected = time.perf_counter() + LAG_INTERVAL
            await asyncio.sleep(LAG_INTERVAL)
            lag.observe(max(0.0, time.perf_counter() - expected))
            in_use.observe(pool.checkedout() + (reads.checked_out if reads else 0))

    task = asyncio.create_task(sample(), name=f"{service}-loop-lag")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
