"""An API exposes what stalls its process: event-loop lag, GC pauses and pool use, on
``/metrics`` (``shared/web/health.py``)."""

import asyncio
import gc
import time

from prometheus_client.parser import text_string_to_metric_families

from .support.services import running_api


def _samples(text: str, name: str) -> dict[tuple, float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                out[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def _over(text: str, metric: str, seconds: float, **labels: str) -> float:
    """Observations above ``seconds`` (count minus the ``le=seconds`` bucket)."""
    buckets = _samples(text, f"{metric}_bucket")
    wanted = {k: v for k, v in labels.items()}

    def value(le: str) -> float:
        return next(
            v for key, v in buckets.items()
            if dict(key).get("le") == le and all(dict(key).get(k) == x for k, x in wanted.items())
        )  # fmt: skip

    return value("+Inf") - value(str(seconds))


async def test_event_loop_lag_gc_pauses_and_pool_use_are_exposed(service_settings):
    async with running_api("campaign", service_settings) as client:
        before = (await client.get("/metrics")).text
        # Block the loop the way a long callback would, and collect garbage.
        time.sleep(0.12)  # noqa: ASYNC251 - the stall under test, not a wait
        gc.collect()
        deadline = time.monotonic() + 5
        while True:  # the sampler notices on its next tick
            after = (await client.get("/metrics")).text
            stalled = _over(after, "scout_event_loop_lag_seconds", 0.1, service="campaign")
            if stalled > _over(before, "scout_event_loop_lag_seconds", 0.1, service="campaign"):
                break
            assert time.monotonic() < deadline, "the blocked loop was never measured"
            await asyncio.sleep(0.05)
    gen2 = (("generation", "2"),)
    pauses_before = _samples(before, "scout_gc_pause_seconds_count").get(gen2, 0)
    assert _samples(after, "scout_gc_pause_seconds_count")[gen2] > pauses_before
    assert _samples(after, "scout_db_pool_size")[(("service", "campaign"),)] > 0
    assert _samples(after, "scout_db_pool_checked_out_count")[(("service", "campaign"),)] > 0
