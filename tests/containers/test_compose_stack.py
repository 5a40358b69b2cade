"""``docker compose up`` of the repository's compose file, then the journey and faults on purpose.

One stack for the module, in order: the user journey through the published ports; then, with
several users creating and deleting campaigns and starting search jobs the whole time, a real
Postgres restart, Postgres stopped for 90 s, NATS stopped for 60 s and a SIGKILL of each worker
container; then the books are checked (every event applied once by each of its consumers, no
dead letters, no held reservation, usage equal to the live rows) and every container must stop
on SIGTERM within 10 s. Each step's figures are printed at the end of the run.
"""

import asyncio
import csv
import io
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.support.wait import eventually

from .books import check_books, settle
from .conftest import report
from .stack import SERVICES, Stack
from .traffic import (
    CLIENT_TIMEOUT_S,
    ReadinessMonitor,
    Traffic,
    WindowReport,
    subscribed_user,
    window_report,
)

PROJECT = "scout-container-suite"
USERS = 4
UNREADY_WITHIN_S = 2.0  # /readyz answers 503 this soon after a dependency goes away
READY_WITHIN_S = 10.0  # and 200 this soon after it answers again
RECOVERY_LIMIT_S = 60.0  # how long the test waits for everything to be back before failing
WORKER_BACK_WITHIN_S = 15.0  # a crashed worker is restarted and ready again
STOP_WITHIN_S = 10.0


@pytest.fixture(scope="module")
async def stack(fresh_project) -> Stack:
    stack = fresh_project(PROJECT)
    start = time.monotonic()
    await asyncio.to_thread(stack.up, 240)
    report(
        "stack",
        f"docker compose up --wait: all services healthy in {time.monotonic() - start:.0f} s",
    )
    return stack


@pytest.fixture(scope="module")
async def http() -> AsyncIterator[httpx.AsyncClient]:
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=20)
    async with httpx.AsyncClient(timeout=CLIENT_TIMEOUT_S, limits=limits) as client:
        yield client


@pytest.fixture(scope="module")
async def running(stack: Stack, http) -> AsyncIterator[tuple[Traffic, ReadinessMonitor]]:
    """Traffic from several users and the readiness probes, from the first fault to the last."""
    users = await asyncio.gather(*(subscribed_user(stack, http) for _ in range(USERS)))
    traffic = Traffic(stack, list(users), http)
    monitor = ReadinessMonitor(stack, http)
    await monitor.start()
    await traffic.start()
    yield traffic, monitor
    await traffic.stop()
    await monitor.stop()


async def test_the_user_journey_through_the_published_ports(stack: Stack, http):
    """Token → /me → a plan by signed Stripe webhook → campaign → job → results → list → CSV."""
    start = time.monotonic()
    user = await subscribed_user(stack, http, plan="growth")
    campaign = await http.post(
        f"{stack.url('campaign')}/campaigns", json={"name": "Spring launch"}, headers=user.headers
    )
    assert campaign.status_code == 201, campaign.text
    job = await http.post(
        f"{stack.url('scraping')}/jobs",
        json={"campaign_id": campaign.json()["id"], "platform": "tiktok",
              "keywords": ["fitness"], "target_results": 20},
        headers=user.headers,
    )  # fmt: skip
    assert job.status_code == 202, job.text
    job_url = f"{stack.url('scraping')}/jobs/{job.json()['id']}"

    async def completed() -> bool:
        body = (await http.get(job_url, headers=user.headers)).json()
        assert body.get("status") not in ("error", "timeout", "cancelled"), body
        return body.get("status") == "completed"

    await eventually(completed, within=90, interval=0.3)
    results = await http.get(f"{job_url}/results", params={"limit": 10}, headers=user.headers)
    creators = results.json()["items"]
    assert len(creators) == 10, results.text
    listed = await http.post(
        f"{stack.url('campaign')}/lists", json={"name": "Shortlist"}, headers=user.headers
    )
    assert listed.status_code == 201, listed.text
    items = [
        {"platform": c["platform"], "external_id": c["external_id"], "handle": c["username"],
         "display_name": c.get("display_name"), "followers": c.get("followers")}
        for c in creators
    ]  # fmt: skip
    list_url = f"{stack.url('campaign')}/lists/{listed.json()['id']}"
    added = await http.post(f"{list_url}/items", json={"items": items}, headers=user.headers)
    assert added.status_code == 200 and added.json()["added"] == len(items), added.text
    export = await http.get(f"{list_url}/export.csv", headers=user.headers)
    assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert len(rows) == len(items)
    assert {i["handle"] for i in items} <= {v for row in rows for v in row.values()}
    report(
        "journey",
        f"sign-up to CSV export through the published ports in {time.monotonic() - start:.1f} s",
    )


# --- faults under traffic -------------------------------------------------------------------


async def _answers(stack: Stack, service: str) -> bool:
    probe = {
        "postgres": ("pg_isready", "-q", "-U", "scout", "-d", "scout", "-h", "127.0.0.1"),
        "nats": (
            "wget",
            "-q",
            "-O",
            "/dev/null",
            "http://127.0.0.1:8222/healthz?js-enabled-only=true",
        ),
    }[service]
    try:
        await stack.acompose("exec", "-T", service, *probe, within=10)
    except (RuntimeError, TimeoutError):
        return False
    return True


async def _everything_ready_and_writing(
    traffic: Traffic, monitor: ReadinessMonitor, since: float
) -> None:
    def ready(probe) -> bool:
        return bool(probe.samples) and probe.samples[-1][1] == 200 and probe.samples[-1][0] > since

    async def back() -> bool:
        return all(ready(p) for p in monitor.probes) and traffic.ok_since(since)

    await eventually(back, within=RECOVERY_LIMIT_S, interval=0.2)


def _check(window: WindowReport, *, unready: bool = True) -> None:
    report("faults", window.line())
    problems = []
    if window.hung:
        worst = max(window.hung, key=lambda o: o.seconds)
        problems.append(
            f"{len(window.hung)} requests hung (worst: {worst.what} {worst.status} after {worst.seconds:.1f} s)"
        )
    if window.server_errors:
        kinds = sorted({f"{o.what} → {o.status}" for o in window.server_errors})
        problems.append(f"{len(window.server_errors)} answers were 5xx other than 503: {kinds}")
    if unready:
        late = {k: v for k, v in window.unready_after.items() if v is None or v > UNREADY_WITHIN_S}
        if late:
            problems.append(f"/readyz not 503 within {UNREADY_WITHIN_S} s: {_fmt(late)}")
    slow = {k: v for k, v in window.ready_after.items() if v is None or v > READY_WITHIN_S}
    if slow:
        problems.append(f"/readyz not 200 within {READY_WITHIN_S} s of the return: {_fmt(slow)}")
    assert not problems, f"{window.name}: " + "; ".join(problems)


def _fmt(latencies: dict[str, float | None]) -> str:
    return ", ".join(f"{k} {'never' if v is None else f'{v:.1f} s'}" for k, v in latencies.items())


async def _outage(stack: Stack, running, service: str, seconds: float, name: str) -> None:
    traffic, monitor = running
    container = stack.container(service)
    start = time.monotonic()
    await stack.adocker("stop", "--time", "10", container)
    gone = time.monotonic()
    # The outage's length is the fault itself, not a wait for something to happen.
    await asyncio.sleep(seconds)
    await stack.adocker("start", container)
    await eventually(lambda: _answers(stack, service), within=60, interval=0.2)
    back = time.monotonic()
    await _everything_ready_and_writing(traffic, monitor, back)
    window = window_report(
        name, traffic, monitor, start=start, end=time.monotonic(), gone=gone, back=back
    )
    _check(window)


async def test_a_real_postgres_restart_under_traffic(stack: Stack, running):
    traffic, monitor = running
    container = stack.container("postgres")
    start = time.monotonic()
    await stack.adocker("restart", "--time", "10", container)
    await eventually(lambda: _answers(stack, "postgres"), within=60, interval=0.2)
    back = time.monotonic()
    await _everything_ready_and_writing(traffic, monitor, back)
    window = window_report(
        "postgres restart", traffic, monitor, start=start, end=time.monotonic(), back=back
    )
    _check(window, unready=False)  # over too quickly to insist every probe saw it


async def test_postgres_stopped_for_90_seconds_under_traffic(stack: Stack, running):
    await _outage(stack, running, "postgres", 90, "postgres stopped 90 s")


async def test_nats_stopped_for_60_seconds_under_traffic(stack: Stack, running):
    await _outage(stack, running, "nats", 60, "nats stopped 60 s")


async def test_sigkill_of_each_worker_container_under_traffic(stack: Stack, running):
    traffic, monitor = running
    for service in SERVICES:
        container = stack.container(f"{service}-worker")
        restarts = (await stack.ainspect(container))["RestartCount"]
        killed = await stack.crash(container)
        probe = monitor.probe(f"{service}-worker-1")

        async def restarted_and_ready(
            container=container, probe=probe, killed=killed, restarts=restarts
        ) -> bool:
            state = await stack.ainspect(container)
            return state["RestartCount"] > restarts and _back_after(probe, killed) is not None

        await eventually(restarted_and_ready, within=60, interval=0.2)
        ready = _back_after(probe, killed)
        assert ready is not None
        window = window_report(
            f"SIGKILL {service}-worker", traffic, monitor, start=killed, end=time.monotonic()
        )
        report("faults", f"{window.line()}; restarted and ready {ready:.1f} s after the kill")
        assert not window.hung and not window.server_errors, window.line()
        assert ready <= WORKER_BACK_WITHIN_S, f"{service}-worker ready only after {ready:.1f} s"


def _back_after(probe, killed: float) -> float | None:
    """Seconds from the kill to the first 200 after the probe saw the worker gone (an answer
    already on its way when the kill landed does not count)."""
    gone = next((t for t, s in probe.samples if t > killed and s != 200), None)
    if gone is None:
        return None
    return next((t - killed for t, s in probe.samples if t > gone and s == 200), None)


async def test_afterwards_every_event_was_applied_once_and_the_books_balance(stack: Stack, running):
    traffic, _ = running
    await traffic.stop()
    report("traffic", f"{len(traffic.log)} requests from {USERS} users during the faults")
    settled = await settle(stack)
    problems, figures = await asyncio.to_thread(check_books, stack)
    for line in figures:
        report("books", line)
    report("books", settled)
    assert not problems, "\n".join(problems)


async def test_sigterm_stops_every_container_within_10_seconds(stack: Stack):
    infrastructure = ("nats", "postgres")
    scout = [
        s
        for s in stack.compose("config", "--services").stdout.decode().split()
        if s not in infrastructure
    ]
    timings: dict[str, tuple[float, int]] = {}

    async def stop(service: str) -> None:
        for container in stack.container_ids(service):
            state = (await stack.ainspect(container))["State"]
            if not state["Running"]:
                continue  # the finished migrate job
            start = time.monotonic()
            await stack.adocker("stop", "--time", str(int(STOP_WITHIN_S)), container)
            seconds = time.monotonic() - start
            timings[service] = (seconds, (await stack.ainspect(container))["State"]["ExitCode"])

    await asyncio.gather(*(stop(s) for s in scout))  # Scout first, while its dependencies run
    for service in infrastructure:
        await stop(service)
    report(
        "sigterm",
        ", ".join(f"{s} {t:.1f} s (exit {code})" for s, (t, code) in sorted(timings.items())),
    )
    slow = {s: t for s, (t, code) in timings.items() if t >= STOP_WITHIN_S or code == 137}
    assert not slow, f"not stopped by SIGTERM within {STOP_WITHIN_S} s (killed): {slow}"
    assert len(timings) == len(scout) - 1 + len(infrastructure)  # every long-running service
