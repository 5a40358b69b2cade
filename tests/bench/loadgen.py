"""The load side of ``bench_http``: a lean keep-alive HTTP/1.1 client and the reading of what
stalled the server (its ``/metrics``: event-loop lag, GC pauses, pool use)."""

import asyncio
import contextlib
import os
import socket
import time

import httpx
from prometheus_client.parser import text_string_to_metric_families

# --- a lean keep-alive HTTP/1.1 load generator -----------------------------------------------


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length, chunked = None, False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if chunked:
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length:
        await reader.readexactly(length)
    return status


async def _connection(
    port: int, request: bytes, until: float, latencies: list[float], errors: list[int]
) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    done = 0
    try:
        while (started := time.perf_counter()) < until:
            writer.write(request)
            status = await _read_response(reader)
            latencies.append(time.perf_counter() - started)
            if status != 200:
                errors.append(status)
            done += 1
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
    return done


async def load(
    port: int,
    path: str,
    token: str,
    connections: int,
    seconds: float,
    *,
    method: str = "GET",
    body: bytes | None = None,
) -> tuple[int, float, list[float], list[int]]:
    """(requests, elapsed seconds, latencies, non-200 statuses) over ``seconds``; every
    request the same ``method`` with the same JSON ``body`` (if any)."""
    content = (
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        if body is not None
        else ""
    )
    request = (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: application/json\r\n"
        f"Authorization: Bearer {token}\r\n{content}\r\n"
    ).encode() + (body or b"")
    latencies: list[float] = []
    errors: list[int] = []
    started = time.perf_counter()
    counts = await asyncio.gather(
        *(
            _connection(port, request, started + seconds, latencies, errors)
            for _ in range(connections)
        )
    )
    return sum(counts), time.perf_counter() - started, latencies, errors


_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """A process's CPU time so far (user + system), from /proc."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def stalls(port: int) -> dict[str, float]:
    """Cumulative event-loop lag, GC pause and pool histograms from Scout's ``/metrics``."""
    async with httpx.AsyncClient() as client:
        text = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.startswith(("scout_event_loop_lag", "scout_gc_pause", "scout_db_pool")):
                labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
                out[f"{sample.name}{{{labels}}}"] = sample.value
    return out


def stall_summary(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """What the slice added: loop-lag ticks over 10 and 50 ms and its p99 bucket, GC pauses
    (count and total ms, gen 2 alone) and the busiest pool bucket."""
    delta = {k: after[k] - before.get(k, 0.0) for k in after}

    def buckets(prefix: str) -> list[tuple[float, float]]:
        found = []
        for key, value in delta.items():
            if key.startswith(prefix + "_bucket{"):
                le = key.split("le=")[1].split(",")[0].rstrip("}")
                found.append((float(le), value))
        return sorted(found)

    lag = buckets("scout_event_loop_lag_seconds")
    ticks = lag[-1][1] if lag else 0.0
    over = {ms: ticks - next((n for le, n in lag if le >= ms / 1000), ticks) for ms in (10, 50)}
    p99 = next((le for le, n in lag if ticks and n >= 0.99 * ticks), 0.0)
    pool = buckets("scout_db_pool_checked_out")
    gc_count = sum(v for k, v in delta.items() if k.startswith("scout_gc_pause_seconds_count"))
    gc_sum = sum(v for k, v in delta.items() if k.startswith("scout_gc_pause_seconds_sum"))
    gen2 = sum(
        v
        for k, v in delta.items()
        if k.startswith("scout_gc_pause_seconds_sum{gen") and "generation=2" in k
    )
    return {
        "lag_ticks": ticks,
        "lag_over_10ms": over[10],
        "lag_over_50ms": over[50],
        "lag_p99_bucket_ms": p99 * 1000,
        "gc_pauses": gc_count,
        "gc_pause_ms": gc_sum * 1000,
        "gc_gen2_ms": gen2 * 1000,
        "pool_peak_bucket": next((le for le, n in pool if pool and n >= pool[-1][1]), 0.0),
    }
