"""HTTP throughput and latency of the hot paths on one uvicorn worker, beside two baselines.

``GET /me`` (identity), ``GET /campaigns`` (campaign), ``GET /jobs/{id}/results`` plain and
narrowed and sorted (scraping), and ``POST /lists/{id}/items`` with ``from_job`` (campaign,
asking scraping's worker over NATS), each served by the real service (``scout api <service>``:
one uvicorn process, uvloop + httptools) and by a bare Starlette app in a second uvicorn
process that does the same work by hand: verify the RS256 bearer token with PyJWT, run
**exactly the SQL the service sent** for that request (recorded from the service's own engine)
on a ``psycopg_pool.AsyncConnectionPool`` (in a transaction where the service ran one), send
the same NATS requests, and answer the rows as JSON with orjson. Every endpoint also runs on a
third server written the way most FastAPI/SQLModel services are (``tests/bench/baselines.py``).

The load comes from this process: ``connections`` keep-alive HTTP/1.1 connections, each
sending its next request as soon as the previous answer is read (a closed loop). The client is
a few lines on asyncio streams under uvloop rather than httpx, whose own per-request cost
(~0.2 ms of Python) would cap both servers and flatter the ratio. Scout and the baseline are
driven in alternating slices (``--rounds`` of ``--seconds`` each) so the machine's noise lands
on both alike; req/s is requests over the summed slice time, p50/p99 over every request.

Run: ``.venv/bin/python -m tests.bench.bench_http [--scale 0.05] [--seconds 2] [--rounds 3]
[--json]``. It creates, seeds (``tooling.perf.seed`` at a small scale) and drops its own
database. Needs Postgres and NATS (the services connect to it at start). Not a test: the
figures go to docs/performance.md.
"""

import argparse
import asyncio
import contextlib
import importlib
import os
import pickle
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field

import httpx
import orjson
import psycopg
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from psycopg.pq import TransactionStatus

from shared import sqltrace
from shared.auth import mint_token
from shared.db import libpq_url
from shared.settings import LOCAL_POSTGRES_URL, Settings
from tooling import migrate
from tooling.perf.seed import seed

from .bench_events import create_database, drop_database
from .loadgen import cpu_seconds, load, percentile, stall_summary, stalls

ISSUER = "scout-bench"
IDLE = TransactionStatus.IDLE
RESULTS_LIMIT = 50
FROM_JOB_KEYS = 20
RATE_LIMIT = 1_000_000  # list writes a minute
CONCURRENCY = (1, 16)


@dataclass(frozen=True)
class Endpoint:
    name: str
    service: str
    path: str
    clerk_id: str
    method: str = "GET"
    body: bytes | None = None
    # The template-style peer implements it (tests/bench/baselines.py: peer_app).
    peer: bool = False

    @property
    def key(self) -> str:
        """How the baselines find the request's recorded work: method and path with query."""
        return f"{self.method} {self.path}"


@dataclass
class Figure:
    endpoint: str
    connections: int
    rps: float
    p50_ms: float
    p99_ms: float
    baseline_rps: float
    baseline_p50_ms: float
    baseline_p99_ms: float
    ratio: float  # rps / baseline_rps
    cpu_us: float  # server CPU time (user + sys) per request
    baseline_cpu_us: float
    cpu_ratio: float  # baseline_cpu_us / cpu_us: the req/s ratio on an otherwise idle core
    statements: int
    errors: int
    # Non-200 answers by side and status, e.g. {"scout 503": 4}: a figure with errors is not
    # a like-for-like comparison.
    error_statuses: dict[str, int] = field(default_factory=dict)
    # The FastAPI full-stack template's way (sync SQLModel Session, ORM objects, response_model).
    peer_rps: float | None = None
    peer_p50_ms: float | None = None
    peer_p99_ms: float | None = None
    peer_cpu_us: float | None = None
    vs_peer: float | None = None  # rps / peer_rps
    # What stalled Scout's process during its slices (see shared/web/health.py).
    stalls: dict[str, float] = field(default_factory=dict)


# --- recording the SQL a service sends for one request ---------------------------------------


async def record_sql(endpoint: Endpoint, settings: Settings, token: str) -> list[tuple]:
    """Serve one request in-process and return, in order, what the service sent for it: each
    statement its engine ran, as ``("sql", statement, parameters, autocommit, begins)``
    (``begins``: psycopg opened a transaction for it), and each NATS request, as
    ``("nats", subject, payload)``."""
    steps: list[tuple] = []
    active = False

    def hook(cursor, statement, parameters) -> None:
        if active:
            conn = cursor.connection
            begins = not conn.autocommit and conn.info.transaction_status == IDLE
            steps.append(("sql", statement, parameters, conn.autocommit, begins))

    app = importlib.import_module(f"services.{endpoint.service}.api").create_app(settings)
    with sqltrace.recording(None, hook):
        async with app.router.lifespan_context(app):
            nc = app.state.nats.nc
            ask = nc.request

            async def recorded_request(subject, payload=b"", *args, **kwargs):
                if active:
                    steps.append(("nats", subject, payload))
                return await ask(subject, payload, *args, **kwargs)

            nc.request = recorded_request
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
                headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}

                async def send() -> httpx.Response:
                    return await client.request(
                        endpoint.method, endpoint.path, headers=headers, content=endpoint.body
                    )

                warm = await send()  # caches, first-call paths (and a write's first effect)
                warm.raise_for_status()
                active = True
                answer = await send()
                active = False
                answer.raise_for_status()
    return steps


async def compare(
    endpoint: Endpoint,
    token: str,
    servers: dict[str, tuple[int, int]],
    connections: int,
    *,
    seconds: float,
    rounds: int,
    statements: int,
) -> Figure:
    """``servers``: (port, pid) of ``scout``, ``bare`` and optionally ``peer``, driven in
    alternating slices; Scout's stall metrics are read around each of its slices."""
    sides = {name: {"n": 0, "t": 0.0, "cpu": 0.0, "lat": [], "err": []} for name in servers}
    request = {"method": endpoint.method, "body": endpoint.body}
    for port, _ in servers.values():  # warm every side (pools filled, caches hot)
        await load(port, endpoint.path, token, connections, min(0.5, seconds), **request)
    stalled: dict[str, float] = {}
    for _ in range(rounds):
        for name, (port, pid) in servers.items():
            side = sides[name]
            before = await stalls(port) if name == "scout" else {}
            cpu = cpu_seconds(pid)
            n, t, lat, err = await load(port, endpoint.path, token, connections, seconds, **request)
            side["cpu"] += cpu_seconds(pid) - cpu
            side["n"] += n
            side["t"] += t
            side["lat"] += lat
            side["err"] += err
            if name == "scout":
                for k, v in stall_summary(before, await stalls(port)).items():
                    stalled[k] = (
                        max(stalled.get(k, 0.0), v)
                        if "peak" in k or "p99" in k
                        else stalled.get(k, 0.0) + v
                    )

    def figures(name: str) -> tuple[float, float, float, float]:
        side = sides[name]
        rps = side["n"] / side["t"]
        return (
            rps,
            statistics.median(side["lat"]) * 1000,
            percentile(side["lat"], 0.99) * 1000,
            side["cpu"] / side["n"] * 1e6,
        )

    rps, p50, p99, cpu_us = figures("scout")
    b_rps, b_p50, b_p99, b_cpu = figures("bare")
    peer = figures("peer") if "peer" in sides else None
    return Figure(
        endpoint=endpoint.name,
        connections=connections,
        rps=round(rps),
        p50_ms=round(p50, 2),
        p99_ms=round(p99, 2),
        baseline_rps=round(b_rps),
        baseline_p50_ms=round(b_p50, 2),
        baseline_p99_ms=round(b_p99, 2),
        ratio=round(rps / b_rps, 2),
        cpu_us=round(cpu_us),
        baseline_cpu_us=round(b_cpu),
        cpu_ratio=round(b_cpu / cpu_us, 2) if cpu_us else 0.0,
        statements=statements,
        errors=sum(len(side["err"]) for side in sides.values()),
        error_statuses=dict(
            Counter(f"{name} {status}" for name, side in sides.items() for status in side["err"])
        ),
        peer_rps=round(peer[0]) if peer else None,
        peer_p50_ms=round(peer[1], 2) if peer else None,
        peer_p99_ms=round(peer[2], 2) if peer else None,
        peer_cpu_us=round(peer[3]) if peer else None,
        vs_peer=round(rps / peer[0], 2) if peer else None,
        stalls={k: round(v, 2) for k, v in stalled.items()},
    )


# --- processes --------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, *args], env={**os.environ, **env}, stdout=subprocess.DEVNULL
    )


async def _wait_up(
    port: int, proc: subprocess.Popen, path: str = "/healthz", status: int | None = None
) -> None:
    """Until ``path`` answers (with ``status``, when given)."""
    deadline = time.monotonic() + 30
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"server on port {port} exited with {proc.returncode}")
            with contextlib.suppress(httpx.TransportError):
                answer = await client.get(f"http://127.0.0.1:{port}{path}")
                if status is None or answer.status_code == status:
                    return
            await asyncio.sleep(0.1)
    raise TimeoutError(f"server on port {port} did not start")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def run(url: str, args: argparse.Namespace) -> list[Figure]:
    migrate.upgrade(url, "head")
    record = seed(url, args.scale).record
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    prefix = f"bench{uuid.uuid4().hex[:8]}"
    env = {
        "DATABASE_URL": url,
        "SCOUT_NATS_PREFIX": prefix,
        "AUTH_PUBLIC_KEY": public_pem.decode(),
        "AUTH_ISSUER": ISSUER,
        "LOG_LEVEL": "WARNING",
        # The bench adds to one list far faster than a person: a budget it never spends (the
        # limiter's statement still runs on every request).
        "RATE_LIMIT_LIST_WRITES_PER_MINUTE": str(RATE_LIMIT),
    }
    settings = Settings(
        database_url=url,
        scout_nats_prefix=prefix,
        auth_public_key=public_pem.decode(),
        auth_issuer=ISSUER,
        log_level="WARNING",
        rate_limit_list_writes_per_minute=RATE_LIMIT,
    )
    heavy = record["heavy_user"]["clerk_id"]
    job = record["heavy_job"]
    results = f"/jobs/{job['id']}/results"
    with psycopg.connect(libpq_url(url)) as conn:
        keys = [
            key
            for (key,) in conn.execute(
                "SELECT creator_key FROM scraping_job_creators WHERE job_id = %s"
                " ORDER BY ordinal LIMIT %s",
                (job["id"], FROM_JOB_KEYS),
            )
        ]
    from_job = {"from_job": {"job_id": job["id"], "creator_keys": keys}}
    endpoints = [
        Endpoint("GET /me", "identity", "/me", record["ordinary_user"]["clerk_id"], peer=True),
        Endpoint(
            f"GET /campaigns (page 1 of {record['heavy_user']['campaigns']})",
            "campaign",
            "/campaigns?page=1&page_size=20",
            heavy,
            peer=True,
        ),
        Endpoint(
            f"GET /jobs/{{id}}/results ({RESULTS_LIMIT} of {job['creators']})",
            "scraping",
            f"{results}?offset=0&limit={RESULTS_LIMIT}",
            heavy,
            peer=True,
        ),
        Endpoint(
            f"GET /jobs/{{id}}/results?verified&sort=followers_desc ({RESULTS_LIMIT})",
            "scraping",
            f"{results}?verified=true&sort=followers_desc&offset=0&limit={RESULTS_LIMIT}",
            heavy,
            peer=True,
        ),
        Endpoint(
            f"POST /lists/{{id}}/items from_job ({FROM_JOB_KEYS} keys, already listed)",
            "campaign",
            f"/lists/{record['heavy_list']['id']}/items",
            heavy,
            method="POST",
            body=orjson.dumps(from_job),
            peer=True,
        ),
    ]
    endpoints = [e for e in endpoints if not args.only or args.only in e.name]
    tokens = {
        e.name: mint_token(private_pem, e.clerk_id, issuer=ISSUER, ttl_seconds=3600)
        for e in endpoints
    }
    # Scraping's worker answers campaign's questions about a job's creators (from_job).
    metrics_port = _free_port()
    worker = _start(["-m", "tooling.cli", "worker", "scraping"],
                    {**env, "WORKER_METRICS_PORT": str(metrics_port)})  # fmt: skip
    try:
        await _wait_up(metrics_port, worker, "/readyz", status=200)
        captured = {e.key: await record_sql(e, settings, tokens[e.name]) for e in endpoints}
        return await _measure(endpoints, captured, tokens, env, url, public_pem, args, settings)
    finally:
        _stop(worker)


async def _measure(
    endpoints: list[Endpoint],
    captured: dict[str, list[tuple]],
    tokens: dict[str, str],
    env: dict[str, str],
    url: str,
    public_pem: bytes,
    args: argparse.Namespace,
    settings: Settings,
) -> list[Figure]:
    """Each endpoint on its service beside the two baselines, in alternating slices."""
    capture = {
        "dsn": libpq_url(url),
        "nats_url": settings.nats_url,
        "public_key": public_pem,
        "routes": captured,
    }
    with tempfile.NamedTemporaryFile(suffix=".pkl", delete=False) as fh:
        pickle.dump(capture, fh)
        capture_path = fh.name
    base_port, peer_port = _free_port(), _free_port()
    baselines = [
        (port, _start(
            ["-m", "uvicorn", f"tests.bench.baselines:{factory}", "--factory",
             "--host", "127.0.0.1", "--port", str(port), "--no-access-log",
             "--log-level", "warning"],
            {"BENCH_CAPTURE": capture_path},
        ))
        for port, factory in ((base_port, "baseline_app"), (peer_port, "peer_app"))
    ]  # fmt: skip
    (_, baseline), (_, peer) = baselines
    figures: list[Figure] = []
    try:
        for port, proc in baselines:
            await _wait_up(port, proc, "/nowhere")
        for endpoint in endpoints:
            port = _free_port()
            service = _start(
                ["-m", "tooling.cli", "api", endpoint.service, "--port", str(port)], env
            )
            try:
                await _wait_up(port, service)
                for connections in args.connections:
                    servers = {"scout": (port, service.pid), "bare": (base_port, baseline.pid)}
                    if endpoint.peer:
                        servers["peer"] = (peer_port, peer.pid)
                    figure = await compare(
                        endpoint,
                        tokens[endpoint.name],
                        servers,
                        connections,
                        seconds=args.seconds,
                        rounds=args.rounds,
                        statements=sum(step[0] == "sql" for step in captured[endpoint.key]),
                    )
                    figures.append(figure)
                    if not args.json:
                        _print_row(figure)
            finally:
                _stop(service)
    finally:
        for _, proc in baselines:
            _stop(proc)
        os.unlink(capture_path)
    return figures


def _print_row(f: Figure) -> None:
    peer = (
        f" | peer {f.peer_rps:>6,} req/s p99 {f.peer_p99_ms:>7.2f} cpu {f.peer_cpu_us:,} us"
        f" = {f.vs_peer:.2f}x"
        if f.peer_rps
        else ""
    )
    st = f.stalls
    print(
        f"{f.endpoint:<44} c={f.connections:<3} scout {f.rps:>6,} req/s p50 {f.p50_ms:>6.2f}"
        f" p99 {f.p99_ms:>7.2f} | bare {f.baseline_rps:>6,} req/s p50"
        f" {f.baseline_p50_ms:>6.2f} p99 {f.baseline_p99_ms:>7.2f} | {f.ratio:.2f}x"
        f" | cpu/req {f.cpu_us:,} vs {f.baseline_cpu_us:,} us{peer}"
        f" | loop lag p99 <= {st.get('lag_p99_bucket_ms', 0):g} ms,"
        f" {st.get('lag_over_50ms', 0):.0f} ticks > 50 ms; gc {st.get('gc_pauses', 0):.0f}"
        f" pauses {st.get('gc_pause_ms', 0):.1f} ms (gen2 {st.get('gc_gen2_ms', 0):.1f});"
        f" pool peak <= {st.get('pool_peak_bucket', 0):g}"
        f" ({f.statements} stmts{', errors ' + str(f.error_statuses) if f.errors else ''})",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=0.05, help="seed scale (default 0.05)")
    parser.add_argument("--seconds", type=float, default=2.0, help="length of one slice")
    parser.add_argument("--rounds", type=int, default=3, help="alternating slices per side")
    parser.add_argument("--connections", type=int, nargs="+", default=list(CONCURRENCY))
    parser.add_argument("--only", help="run only endpoints whose name contains this")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        pass
    name = f"scout_bench_http_{uuid.uuid4().hex[:8]}"
    url = create_database(LOCAL_POSTGRES_URL, name)
    try:
        figures = asyncio.run(run(url, args))
    finally:
        drop_database(LOCAL_POSTGRES_URL, name)
    if args.json:
        print(orjson.dumps([asdict(f) for f in figures], option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
