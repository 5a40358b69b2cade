"""Benchmark of the event backbone, each figure beside raw JetStream ``publish_async``.

Run: ``.venv/bin/python -m tests.bench.bench_events [--events N] [--rate R] [--json]``. It creates and drops
its own database and uses a unique NATS prefix (streams deleted at the end). Not a test.
"""

import argparse
import asyncio
import os
import statistics
import time
import uuid
from datetime import UTC, datetime

import orjson
import psycopg
import sqlalchemy as sa
from nats.js import JetStreamContext
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from shared.db import libpq_url, make_engine, session_factory, transaction
from shared.events.consumer import Consumer
from shared.events.envelope import Envelope, prefixed, stream_name
from shared.events.outbox import record_event
from shared.events.relay import Relay
from shared.events.streams import connect, delete_streams, ensure_streams
from shared.settings import DEFAULT_NATS_URL, LOCAL_POSTGRES_URL
from tooling import migrate

SUBJECT = "platform.config.changed.v1"


def _data(i: int) -> dict:
    return {"category": "bench", "key": f"key-{i}", "value": "x" * 64, "value_type": "string"}


def create_database(admin_url: str, name: str) -> str:
    with psycopg.connect(libpq_url(admin_url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    parts = psycopg.conninfo.conninfo_to_dict(libpq_url(admin_url))
    user, host, port = parts.get("user", "postgres"), parts.get("host", "127.0.0.1"), parts.get("port", "5432")  # fmt: skip
    password = f":{parts['password']}" if parts.get("password") else ""
    return f"postgresql://{user}{password}@{host}:{port}/{name}"


def drop_database(admin_url: str, name: str) -> None:
    with psycopg.connect(libpq_url(admin_url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def write_outbox(engine: AsyncEngine, n: int, per_txn: int = 1000) -> float:
    started = time.perf_counter()
    factory = session_factory(engine)
    for start in range(0, n, per_txn):
        async with transaction(factory) as session:
            for i in range(start, min(n, start + per_txn)):
                await record_event(
                    session, service="identity", type="platform.config.changed",
                    aggregate_type="config", aggregate_id=f"bench/{i}", data=_data(i),
                )  # fmt: skip
    return n / (time.perf_counter() - started)


def _cpu_ticks(pid: int) -> int | None:
    """User + system CPU of a local process in clock ticks (None where /proc cannot tell)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[11]) + int(fields[12])


async def postgres_cpu(engine: AsyncEngine) -> dict[int, int | None]:
    """CPU so far of each client connection's server process on the bench database."""
    sql = (
        "SELECT pid FROM pg_stat_activity"
        " WHERE datname = current_database() AND backend_type = 'client backend'"
    )
    async with engine.connect() as conn:
        pids = (await conn.execute(sa.text(sql))).scalars()
        return {pid: _cpu_ticks(pid) for pid in pids}


def _ms_per_1000(ticks: int, n: int) -> float:
    return ticks * 1000 / os.sysconf("SC_CLK_TCK") * 1000 / n


async def raw_publish(
    js: JetStreamContext, prefix: str, n: int, body: bytes
) -> tuple[float, float]:
    """Baseline: JetStream publish_async of same-sized messages with Nats-Msg-Id, all acked.
    Returns (msgs/s, this process's CPU ms per 1,000 messages)."""
    subject = prefixed(SUBJECT, prefix)
    cpu, started = time.process_time(), time.perf_counter()
    futures = [
        await js.publish_async(subject, body, headers={"Nats-Msg-Id": uuid.uuid4().hex})
        for _ in range(n)
    ]
    await asyncio.gather(*futures)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    return n / elapsed, cpu * 1e6 / n


async def relay_throughput(
    engine: AsyncEngine, js: JetStreamContext, prefix: str, n: int
) -> tuple[float, float, float | None]:
    """Returns (events/s, this process's and Postgres's CPU ms per 1,000 events; Postgres's is
    None when its processes are not on this host)."""
    relay = Relay(engine, js, "identity", prefix=prefix, batch_size=1000, listen=False)
    before = await postgres_cpu(engine)
    cpu, started = time.process_time(), time.perf_counter()
    published = await relay.drain()
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    after = await postgres_cpu(engine)
    assert published == n, (published, n)
    info = await js.stream_info(stream_name("IDENTITY", prefix))
    assert info.state.messages == n, info.state.messages
    server: float | None = None
    if all(ticks is not None for ticks in (*before.values(), *after.values())):
        server = _ms_per_1000(sum(t - (before.get(pid) or 0) for pid, t in after.items()), n)
    return n / elapsed, cpu * 1e6 / n, server


async def consumer_throughput(
    engine: AsyncEngine, js: JetStreamContext, prefix: str, n: int
) -> float:
    seen = 0
    done = asyncio.Event()

    async def handler(session: AsyncSession, envelope: Envelope) -> None:
        nonlocal seen
        seen += 1
        if seen == n:
            done.set()

    consumer = Consumer(
        engine, js, service="billing", name="bench-throughput", handlers={SUBJECT: handler},
        prefix=prefix, batch=32, fetch_timeout=0.5,
    )  # fmt: skip
    await consumer.ensure()
    started = time.perf_counter()
    task = asyncio.create_task(consumer.run())
    await asyncio.wait_for(done.wait(), timeout=600)
    elapsed = time.perf_counter() - started
    consumer.stop()
    await task
    return n / elapsed


async def latency(
    engine: AsyncEngine, js: JetStreamContext, prefix: str, n: int, rate: float
) -> list[float]:
    """Commit one event at a time at ``rate``/s; latency = commit → consumer handler running."""
    committed_at: dict[str, float] = {}
    # Arrival times, matched to commit times at the end: the handler may run before the writer
    # has noted its commit time.
    arrived: dict[str, float] = {}
    done = asyncio.Event()

    async def handler(session: AsyncSession, envelope: Envelope) -> None:
        arrived.setdefault(str(envelope.id), time.perf_counter())
        if len(arrived) == n:
            done.set()

    relay = Relay(engine, js, "identity", prefix=prefix, poll_interval=1.0)
    consumer = Consumer(
        engine, js, service="billing", name="bench-latency", handlers={SUBJECT: handler},
        prefix=prefix, batch=32, fetch_timeout=0.5,
    )  # fmt: skip
    await consumer.ensure()
    tasks = [asyncio.create_task(relay.run()), asyncio.create_task(consumer.run())]
    await asyncio.sleep(0.5)  # LISTEN established, consumer waiting
    factory = session_factory(engine)
    for i in range(n):
        async with transaction(factory) as session:
            event_id = await record_event(
                session, service="identity", type="platform.config.changed",
                aggregate_type="config", aggregate_id=f"lat/{i}", data=_data(i),
            )  # fmt: skip
        committed_at[str(event_id)] = time.perf_counter()
        await asyncio.sleep(1 / rate)
    await asyncio.wait_for(done.wait(), timeout=120)
    relay.stop()
    consumer.stop()
    await asyncio.gather(*tasks)
    return [arrived[event_id] - at for event_id, at in committed_at.items()]


def _pct(values: list[float], p: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(p) - 1] * 1000


async def main(events: int, rate: float, latency_events: int, as_json: bool = False) -> None:
    admin_url = os.environ.get("DATABASE_URL", LOCAL_POSTGRES_URL)
    nats_url = os.environ.get("NATS_URL", DEFAULT_NATS_URL)
    name = f"scout_bench_{uuid.uuid4().hex[:10]}"
    run = uuid.uuid4().hex[:6]
    prefixes = {k: f"bench{run}{k}" for k in ("raw", "relay", "lat")}
    url = create_database(admin_url, name)
    nc = await connect(nats_url, name="scout-bench")
    js = nc.jetstream()
    engine = make_engine(url, pool_size=40, application_name="scout-bench")
    try:
        migrate.upgrade(url, "head")
        for prefix in prefixes.values():
            await ensure_streams(js, prefix)
        sample = Envelope(
            id=uuid.uuid4(), type="platform.config.changed", version=1, source="identity",
            occurred_at=datetime.now(UTC), aggregate={"type": "config", "id": "bench/0"},
            correlation_id=str(uuid.uuid4()), data=_data(0),
        ).to_json()  # fmt: skip

        raw, raw_cpu = await raw_publish(js, prefixes["raw"], events, sample)
        write = await write_outbox(engine, events)
        relay, relay_cpu, relay_pg = await relay_throughput(engine, js, prefixes["relay"], events)
        consume = await consumer_throughput(engine, js, prefixes["relay"], events)
        lat = await latency(engine, js, prefixes["lat"], latency_events, rate)

        server = nc._server_info.get("version")
        async with engine.connect() as conn:
            pg = await conn.scalar(sa.text("SHOW server_version"))
        print(
            f"\nScout event backbone — {events} events of {len(sample)} B, NATS {server}, PostgreSQL {pg}"
        )
        print(f"  raw JetStream publish_async (baseline)  {raw:>10,.0f} msgs/s")
        print(
            f"  relay: outbox rows → JetStream acks     {relay:>10,.0f} events/s  ({relay / raw:.0%} of raw)"
        )
        pg_cpu = "—" if relay_pg is None else f"{relay_pg:.1f} ms"
        print(
            f"  CPU per 1000 events: raw publish {raw_cpu:.1f} ms (this process); "
            f"relay {relay_cpu:.1f} ms (this process) + Postgres {pg_cpu}"
        )
        print(f"  outbox writes (record_event, 1000/txn)  {write:>10,.0f} events/s")
        print(f"  consumer: inbox + handler, 1 txn each   {consume:>10,.0f} events/s")
        print(
            f"  outbox commit → consumer handler, {latency_events} events at {rate:g}/s: "
            f"p50 {_pct(lat, 50):.1f} ms, p99 {_pct(lat, 99):.1f} ms, max {max(lat) * 1000:.1f} ms"
        )
        if as_json:
            figures = {
                "events": events, "event_bytes": len(sample), "raw_publish_per_s": round(raw),
                "relay_per_s": round(relay), "relay_vs_raw": round(relay / raw, 2),
                "cpu_ms_per_1000": {"raw": round(raw_cpu, 1), "relay": round(relay_cpu, 1),
                                    "relay_postgres": relay_pg and round(relay_pg, 1)},
                "outbox_writes_per_s": round(write), "consumer_per_s": round(consume),
                "latency_ms": {"p50": round(_pct(lat, 50), 1), "p99": round(_pct(lat, 99), 1),
                               "max": round(max(lat) * 1000, 1)},
            }  # fmt: skip
            print(orjson.dumps(figures).decode())
    finally:
        for prefix in prefixes.values():
            await delete_streams(js, prefix)
        await nc.close()
        await engine.dispose()
        drop_database(admin_url, name)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rate", type=float, default=200.0, help="events/s for the latency run")
    parser.add_argument("--latency-events", type=int, default=1000)
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = parser.parse_args()
    asyncio.run(main(args.events, args.rate, args.latency_events, args.json))
