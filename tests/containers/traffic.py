"""Users on the published ports, a readiness monitor, and what they saw during each fault.

:class:`Traffic` runs several users at once, each creating and deleting campaigns and starting
search jobs, and logs every request with its timing and outcome. :class:`ReadinessMonitor`
polls every ``/readyz`` (APIs on their published ports, workers on their container address)
several times a second. A fault test marks a window; :func:`window_report` turns what both saw
in it into the figures the suite prints and asserts on.
"""

import asyncio
import contextlib
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import httpx

from shared.settings import DEV_STRIPE_WEBHOOK_SECRET
from tests.support.fake_stripe import FakeStripe, sign
from tests.support.wait import eventually

from .stack import SERVICES, WORKER_METRICS_PORT, Stack

# A request that has not answered by then hangs, whatever it would have answered later.
REQUEST_BOUND_S = 10.0
CLIENT_TIMEOUT_S = 30.0
POLL_INTERVAL_S = 0.2
PROBE_TIMEOUT_S = 3.0
JOB_TARGET = 10


# --- a user ---------------------------------------------------------------------------------


@dataclass
class User:
    clerk_id: str
    headers: dict[str, str]


async def subscribed_user(stack: Stack, http: httpx.AsyncClient, plan: str = "pro") -> User:
    """A user who exists (``GET /me``), was provisioned by billing from identity's event, and
    holds ``plan`` after a signed Stripe webhook, as a real sign-up would leave them."""
    clerk_id = f"user_ct{uuid.uuid4().hex[:10]}"
    token = await asyncio.to_thread(stack.token, clerk_id)
    user = User(clerk_id, {"Authorization": f"Bearer {token}"})
    me = await http.get(f"{stack.url('identity')}/me", headers=user.headers)
    assert me.status_code == 200 and me.json()["user_id"] == clerk_id, me.text

    async def status() -> dict:
        r = await http.get(f"{stack.url('billing')}/billing/status", headers=user.headers)
        return r.json() if r.status_code == 200 else {}

    async def provisioned() -> bool:
        return bool(await status())

    await eventually(provisioned, within=60, interval=0.3)
    stripe = FakeStripe()
    subscription = stripe.subscription(
        customer=f"cus_{uuid.uuid4().hex[:12]}",
        price=f"price_{plan}_monthly",
        status="active",
        user_id=clerk_id,
    )
    event = stripe.event("customer.subscription.created", subscription)
    r = await http.post(
        f"{stack.url('billing')}/webhooks/stripe",
        content=event,
        headers={
            "Stripe-Signature": sign(event, DEV_STRIPE_WEBHOOK_SECRET),
            "content-type": "application/json",
        },
    )
    assert r.status_code == 200, r.text

    async def on_plan() -> bool:
        s = await status()
        return s.get("plan") == plan and s.get("subscription_status") == "active"

    await eventually(on_plan, within=60, interval=0.3)
    return user


# --- requests and what came back -------------------------------------------------------------


@dataclass
class Outcome:
    start: float
    end: float
    what: str
    status: int | str  # the HTTP status, or the exception's name when nothing came back

    @property
    def seconds(self) -> float:
        return self.end - self.start

    @property
    def hung(self) -> bool:
        return not isinstance(self.status, int) or self.seconds > REQUEST_BOUND_S

    @property
    def server_error(self) -> bool:
        return isinstance(self.status, int) and self.status >= 500 and self.status != 503


class Traffic:
    """Several users at once: campaigns created and deleted, search jobs started."""

    def __init__(self, stack: Stack, users: list[User], http: httpx.AsyncClient) -> None:
        self.stack, self.users, self.http = stack, users, http
        self.log: list[Outcome] = []
        self.keepers: dict[str, str] = {}  # clerk id → the campaign its jobs run on
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task] = []

    async def request(
        self, what: str, method: str, url: str, user: User, **kw
    ) -> httpx.Response | None:
        start = time.monotonic()
        try:
            r = await self.http.request(method, url, headers=user.headers, **kw)
        except httpx.HTTPError as exc:
            self.log.append(Outcome(start, time.monotonic(), what, type(exc).__name__))
            return None
        self.log.append(Outcome(start, time.monotonic(), what, r.status_code))
        return r

    async def _user(self, user: User) -> None:
        campaigns, scraping = self.stack.url("campaign"), self.stack.url("scraping")
        throwaway: list[str] = []
        keeper = self.keepers[user.clerk_id]
        n = 0
        while not self._stop.is_set():
            n += 1
            r = await self.request(
                "create campaign", "POST", f"{campaigns}/campaigns", user,
                json={"name": f"traffic {n}"},
            )  # fmt: skip
            if r is not None and r.status_code == 201:
                throwaway.append(r.json()["id"])
            if len(throwaway) > 2:
                r = await self.request(
                    "delete campaign", "DELETE", f"{campaigns}/campaigns/{throwaway[0]}", user
                )
                if r is not None and r.status_code in (204, 404):
                    throwaway.pop(0)
            if n % 6 == 0:
                await self.request(
                    "start job", "POST", f"{scraping}/jobs", user,
                    json={"campaign_id": keeper, "platform": "tiktok",
                          "keywords": [f"topic{n % 5}"], "target_results": JOB_TARGET},
                )  # fmt: skip
            await self.request("list campaigns", "GET", f"{campaigns}/campaigns", user)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), 0.5)

    async def start(self) -> None:
        for user in self.users:
            r = await self.http.post(
                f"{self.stack.url('campaign')}/campaigns",
                json={"name": "where the jobs run"},
                headers=user.headers,
            )
            assert r.status_code == 201, r.text
            self.keepers[user.clerk_id] = r.json()["id"]
        self._tasks = [asyncio.create_task(self._user(u)) for u in self.users]

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)

    def ok_since(self, since: float) -> bool:
        """Has a campaign been created since ``since``? (the write path works again)."""
        return any(
            o.start >= since and o.what == "create campaign" and o.status == 201 for o in self.log
        )


# --- readiness ------------------------------------------------------------------------------


@dataclass
class Probe:
    name: str
    url: str | None = None
    container: str | None = None
    samples: list[tuple[float, int | str]] = field(default_factory=list)


class ReadinessMonitor:
    """Polls every API's and worker's ``/readyz`` and keeps what each answered, and when."""

    def __init__(self, stack: Stack, http: httpx.AsyncClient) -> None:
        self.stack, self.http = stack, http
        self.probes: list[Probe] = []
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        for service in SERVICES:
            self.probes.append(Probe(f"{service}-api", url=f"{self.stack.url(service)}/readyz"))
            for i, container in enumerate(self.stack.container_ids(f"{service}-worker"), 1):
                self.probes.append(Probe(f"{service}-worker-{i}", container=container))
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            await asyncio.gather(*(self._poll(p) for p in self.probes))
            await asyncio.sleep(POLL_INTERVAL_S)

    async def _poll(self, probe: Probe) -> None:
        if probe.container is not None and probe.url is None:
            with contextlib.suppress(Exception):
                ip = await self.stack.ip(probe.container)
                if ip:
                    probe.url = f"http://{ip}:{WORKER_METRICS_PORT}/readyz"
        if probe.url is None:
            probe.samples.append((time.monotonic(), "down"))
            return
        try:
            r = await self.http.get(probe.url, timeout=PROBE_TIMEOUT_S)
            probe.samples.append((time.monotonic(), r.status_code))
        except httpx.TimeoutException:
            probe.samples.append((time.monotonic(), "timeout"))
        except httpx.HTTPError:
            probe.samples.append((time.monotonic(), "down"))
            if probe.container is not None:
                probe.url = None  # a restarted container may have a new address

    def probe(self, name: str) -> Probe:
        return next(p for p in self.probes if p.name == name)

    @staticmethod
    def first(probe: Probe, after: float, want) -> float | None:
        """Seconds from ``after`` to the first sample answering ``want`` (None: never)."""
        for t, status in probe.samples:
            if t >= after and status == want:
                return t - after
        return None


# --- a fault's figures ------------------------------------------------------------------------


@dataclass
class WindowReport:
    name: str
    requests: int = 0
    statuses: Counter = field(default_factory=Counter)
    max_seconds: float = 0.0
    hung: list[Outcome] = field(default_factory=list)
    server_errors: list[Outcome] = field(default_factory=list)
    unready_after: dict[str, float | None] = field(default_factory=dict)
    ready_after: dict[str, float | None] = field(default_factory=dict)

    def line(self) -> str:
        codes = " ".join(f"{k}x{v}" for k, v in sorted(self.statuses.items(), key=str))
        text = (
            f"{self.name}: {self.requests} requests [{codes}], slowest {self.max_seconds:.1f} s, "
            f"hung {len(self.hung)}, 5xx other than 503: {len(self.server_errors)}"
        )
        if self.unready_after:
            text += f"; /readyz 503 after {_slowest(self.unready_after)}"
        if self.ready_after:
            text += f"; /readyz 200 again after {_slowest(self.ready_after)}"
        return text


def _slowest(latencies: dict[str, float | None]) -> str:
    """The slowest probe's latency, or the probes that never got there."""
    never = sorted(name for name, v in latencies.items() if v is None)
    if never:
        return "never for " + ", ".join(never)
    name, value = max(latencies.items(), key=lambda kv: kv[1] or 0.0)
    return f"{value:.1f} s (slowest: {name})"


def window_report(
    name: str,
    traffic: Traffic,
    monitor: ReadinessMonitor,
    *,
    start: float,
    end: float,
    gone: float | None = None,
    back: float | None = None,
    probes: list[str] | None = None,
) -> WindowReport:
    """What traffic and the probes saw between ``start`` and ``end``; readiness latencies are
    measured from ``gone`` (the dependency went away) and ``back`` (it answers again)."""
    report = WindowReport(name)
    for o in traffic.log:
        if start <= o.start <= end:
            report.requests += 1
            report.statuses[o.status] += 1
            report.max_seconds = max(report.max_seconds, o.seconds)
            if o.hung:
                report.hung.append(o)
            if o.server_error:
                report.server_errors.append(o)
    for probe in monitor.probes:
        if probes is not None and probe.name not in probes:
            continue
        if gone is not None:
            report.unready_after[probe.name] = monitor.first(probe, gone, 503)
        if back is not None:
            report.ready_after[probe.name] = monitor.first(probe, back, 200)
    return report
