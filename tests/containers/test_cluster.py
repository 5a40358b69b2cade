"""The cluster profile: a 3-node JetStream cluster, streams at 3 replicas, two of every worker.

``docker-compose.yml`` with ``docker-compose.cluster.yml`` on top, unchanged. With several
users creating and deleting campaigns and starting search jobs, the NATS server that leads
the cluster's metadata is killed (SIGKILL) and kept away for 30 s, at least until the two
survivors have carried a new campaign and a whole new search job and every worker replica is
ready again (reconnected to a survivor); then it comes back. Afterwards nothing was lost and
nothing was applied twice.
"""

import asyncio
import json
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.support.wait import eventually

from .books import check_books, settle
from .conftest import report
from .stack import SERVICES, Stack
from .traffic import CLIENT_TIMEOUT_S, ReadinessMonitor, Traffic, subscribed_user, window_report

PROJECT = "scout-container-cluster"
FILES = ("docker-compose.yml", "docker-compose.cluster.yml")
NODES = {"nats-1": "nats", "nats-2": "nats-2", "nats-3": "nats-3"}  # server name → service
USERS = 3
SURVIVORS_WITHIN_S = 120.0
NODE_AWAY_S = 30.0


@pytest.fixture(scope="module")
async def cluster(fresh_project) -> Stack:
    stack = fresh_project(PROJECT, FILES)
    start = time.monotonic()
    await asyncio.to_thread(stack.up, 300)
    report("cluster", f"docker compose up --wait: healthy in {time.monotonic() - start:.0f} s")
    return stack


@pytest.fixture(scope="module")
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=CLIENT_TIMEOUT_S) as client:
        yield client


async def _jsz(stack: Stack, service: str = "nats") -> dict:
    url = "http://127.0.0.1:8222/jsz?streams=true&config=true"
    return json.loads(await stack.acompose("exec", "-T", service, "wget", "-q", "-O", "-", url))


async def test_the_cluster_runs_three_nats_servers_replicated_streams_and_two_of_each_worker(
    cluster: Stack,
):
    jsz = await _jsz(cluster)
    streams = [s for account in jsz["account_details"] for s in account.get("stream_detail", [])]
    assert streams, jsz
    replicas = {s["name"]: s["config"]["num_replicas"] for s in streams}
    assert set(replicas.values()) == {3}, replicas
    peers = {s["name"]: 1 + len(s["cluster"].get("replicas", [])) for s in streams}
    assert set(peers.values()) == {3}, peers
    assert jsz["meta_cluster"]["cluster_size"] == 3, jsz["meta_cluster"]
    for service in SERVICES:
        assert len(cluster.container_ids(f"{service}-worker")) == 2, service
    report("cluster", f"streams at 3 replicas: {sorted(replicas)}; two replicas of each worker")


async def test_losing_one_nats_server_under_traffic_loses_nothing(cluster: Stack, http):
    users = await asyncio.gather(*(subscribed_user(cluster, http) for _ in range(USERS)))
    traffic = Traffic(cluster, list(users), http)
    monitor = ReadinessMonitor(cluster, http)
    await monitor.start()
    await traffic.start()
    try:
        leader = (await _jsz(cluster))["meta_cluster"]["leader"]
        victim = cluster.container(NODES[leader])
        before = cluster.sql("SELECT coalesce(max(created_at), 'epoch') FROM scraping_jobs")[0][0]
        killed = time.monotonic()
        await cluster.adocker("kill", "--signal", "KILL", victim)  # no restart: it stays away

        async def survivors_carry_on() -> bool:
            done = await asyncio.to_thread(
                cluster.scalar,
                "SELECT count(*) FROM scraping_jobs"
                f" WHERE created_at > '{before}' AND status = 'completed'",
            )
            reconnected = all(
                p.samples and p.samples[-1][0] > killed + 1 and p.samples[-1][1] == 200
                for p in monitor.probes
            )
            return done > 0 and traffic.ok_since(killed + 1) and reconnected

        await eventually(survivors_carry_on, within=SURVIVORS_WITHIN_S, interval=0.5)
        carried = time.monotonic() - killed
        # However quickly the survivors took over, the server stays away a while under traffic.
        await asyncio.sleep(max(0.0, NODE_AWAY_S - carried))
        await cluster.adocker("start", victim)
        back = time.monotonic()

        def everyone_ready() -> bool:
            return all(p.samples and p.samples[-1][1] == 200 for p in monitor.probes)

        async def ready() -> bool:
            return everyone_ready() and traffic.ok_since(back)

        await eventually(ready, within=60, interval=0.2)
        window = window_report(
            f"kill NATS {leader} (meta leader)",
            traffic,
            monitor,
            start=killed,
            end=time.monotonic(),
        )
    finally:
        await traffic.stop()
        await monitor.stop()
    report(
        "cluster",
        f"{window.line()}; every worker reconnected and the survivors carried a new campaign "
        f"and a whole search job {carried:.1f} s after the kill",
    )
    assert not window.hung and not window.server_errors, window.line()
    settled = await settle(cluster)
    problems, figures = await asyncio.to_thread(check_books, cluster)
    for line in figures:
        report("cluster books", line)
    report("cluster books", settled)
    assert not problems, "\n".join(problems)
