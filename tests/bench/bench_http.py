"""HTTP throughput and latency of the hot reads on one uvicorn worker, beside bare Starlette.

``GET /me`` (identity), ``GET /campaigns`` (campaign) and ``GET /jobs/{id}/results`` (scraping),
each served by the real service (``scout api <service>``: one uvicorn process, uvloop +
httptools) and by a bare Starlette app in a second uvicorn process that does the same work by
hand: verify the RS256 bearer token with PyJWT, run **exactly the SQL the service sent** for
that request (recorded from the service's own engine) on a ``psycopg_pool.AsyncConnectionPool``
in autocommit, and answer the rows as JSON with orjson.

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
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any

import httpx
import jwt
import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from shared import sqltrace
from shared.auth import mint_token
from shared.db import libpq_url
from shared.settings import LOCAL_POSTGRES_URL, Settings
from tooling import migrate
from tooling.perf.seed import seed

from .bench_events import create_database, drop_database

ISSUER = "scout-bench"
RESULTS_LIMIT = 50
CONCURRENCY = (1, 16)


@dataclass(frozen=True)
class Endpoint:
    name: str
    service: str
    path: str
    clerk_id: str


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


# --- the bare Starlette baseline (runs in its own uvicorn process) -----------------------------


def baseline_app():
    """``uvicorn tests.bench.bench_http:baseline_app --factory``; reads ``BENCH_CAPTURE``."""
    from psycopg.rows import dict_row
    from psycopg_pool import AsyncConnectionPool
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    with open(os.environ["BENCH_CAPTURE"], "rb") as fh:
        capture: dict[str, Any] = pickle.load(fh)
    key = serialization.load_pem_public_key(capture["public_key"])
    pool = AsyncConnectionPool(
        capture["dsn"],
        min_size=10,
        max_size=10,
        kwargs={"autocommit": True, "row_factory": dict_row},
        open=False,
    )

    def handler(statements: list[tuple[str, Any]]):
        async def endpoint(request: Request) -> Response:
            auth = request.headers.get("authorization", "")
            if not auth.startswith("Bearer "):
                return Response(b'{"code":"unauthorized"}', 401, media_type="application/json")
            try:
                claims = jwt.decode(auth[7:], key, algorithms=["RS256"], issuer=ISSUER)
            except jwt.PyJWTError:
                return Response(b'{"code":"unauthorized"}', 401, media_type="application/json")
            answer: dict[str, Any] = {"sub": claims["sub"]}
            async with pool.connection() as conn:
                for i, (sql, params) in enumerate(statements):
                    cur = await conn.execute(sql, params)
                    answer[str(i)] = await cur.fetchall()
            return Response(orjson.dumps(answer, default=_default), media_type="application/json")

        return endpoint

    @contextlib.asynccontextmanager
    async def lifespan(app):
        await pool.open(wait=True)
        yield
        await pool.close()

    routes = [
        Route(path, handler(statements), methods=["GET"])
        for path, statements in capture["routes"].items()
    ]
    return Starlette(routes=routes, lifespan=lifespan)


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError


# --- recording the SQL a service sends for one request ---------------------------------------


async def record_sql(endpoint: Endpoint, settings: Settings, token: str) -> list[tuple[str, Any]]:
    """Serve one request in-process and return the statements the service's engine sent."""
    calls: list[tuple[str, Any]] = []
    active = False

    def hook(cursor, statement, parameters) -> None:
        if active:
            calls.append((statement, parameters))

    app = importlib.import_module(f"services.{endpoint.service}.api").create_app(settings)
    with sqltrace.recording(None, hook):
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
                headers = {"authorization": f"Bearer {token}"}
                warm = await client.get(endpoint.path, headers=headers)  # caches, first-call paths
                warm.raise_for_status()
                active = True
                answer = await client.get(endpoint.path, headers=headers)
                active = False
                answer.raise_for_status()
    return calls


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
    port: int, path: str, token: str, connections: int, seconds: float
) -> tuple[int, float, list[float], list[int]]:
    """(requests, elapsed seconds, latencies, non-200 statuses) over ``seconds``."""
    request = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: application/json\r\n"
        f"Authorization: Bearer {token}\r\n\r\n"
    ).encode()
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


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def compare(
    endpoint: Endpoint,
    token: str,
    scout: tuple[int, int],
    base: tuple[int, int],
    connections: int,
    *,
    seconds: float,
    rounds: int,
    statements: int,
) -> Figure:
    """``scout`` and ``base`` are (port, pid) of the two servers."""
    sides: dict[tuple[int, int], dict[str, Any]] = {
        s: {"n": 0, "t": 0.0, "cpu": 0.0, "lat": [], "err": []} for s in (scout, base)
    }
    for port, _ in sides:  # warm both (pools filled, caches hot)
        await load(port, endpoint.path, token, connections, min(0.5, seconds))
    for _ in range(rounds):
        for (port, pid), side in sides.items():
            cpu = cpu_seconds(pid)
            n, t, lat, err = await load(port, endpoint.path, token, connections, seconds)
            side["cpu"] += cpu_seconds(pid) - cpu
            side["n"] += n
            side["t"] += t
            side["lat"] += lat
            side["err"] += err
    ours, theirs = sides[scout], sides[base]
    rps, base_rps = ours["n"] / ours["t"], theirs["n"] / theirs["t"]
    cpu_us, base_cpu_us = ours["cpu"] / ours["n"] * 1e6, theirs["cpu"] / theirs["n"] * 1e6
    return Figure(
        endpoint=endpoint.name,
        connections=connections,
        rps=round(rps),
        p50_ms=round(statistics.median(ours["lat"]) * 1000, 2),
        p99_ms=round(_percentile(ours["lat"], 0.99) * 1000, 2),
        baseline_rps=round(base_rps),
        baseline_p50_ms=round(statistics.median(theirs["lat"]) * 1000, 2),
        baseline_p99_ms=round(_percentile(theirs["lat"], 0.99) * 1000, 2),
        ratio=round(rps / base_rps, 2),
        cpu_us=round(cpu_us),
        baseline_cpu_us=round(base_cpu_us),
        cpu_ratio=round(base_cpu_us / cpu_us, 2) if cpu_us else 0.0,
        statements=statements,
        errors=len(ours["err"]) + len(theirs["err"]),
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


async def _wait_up(port: int, proc: subprocess.Popen, path: str = "/healthz") -> None:
    deadline = time.monotonic() + 30
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"server on port {port} exited with {proc.returncode}")
            with contextlib.suppress(httpx.TransportError):
                await client.get(f"http://127.0.0.1:{port}{path}")
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
    }
    settings = Settings(
        database_url=url,
        scout_nats_prefix=prefix,
        auth_public_key=public_pem.decode(),
        auth_issuer=ISSUER,
        log_level="WARNING",
    )
    heavy = record["heavy_user"]["clerk_id"]
    endpoints = [
        Endpoint("GET /me", "identity", "/me", record["ordinary_user"]["clerk_id"]),
        Endpoint(
            f"GET /campaigns (page 1 of {record['heavy_user']['campaigns']})",
            "campaign",
            "/campaigns?page=1&page_size=20",
            heavy,
        ),
        Endpoint(
            f"GET /jobs/{{id}}/results ({RESULTS_LIMIT} of {record['heavy_job']['creators']})",
            "scraping",
            f"/jobs/{record['heavy_job']['id']}/results?offset=0&limit={RESULTS_LIMIT}",
            heavy,
        ),
    ]
    endpoints = [e for e in endpoints if not args.only or args.only in e.name]
    tokens = {
        e.name: mint_token(private_pem, e.clerk_id, issuer=ISSUER, ttl_seconds=3600)
        for e in endpoints
    }
    captured = {
        e.path.split("?")[0]: await record_sql(e, settings, tokens[e.name]) for e in endpoints
    }
    with tempfile.NamedTemporaryFile(suffix=".pkl", delete=False) as fh:
        pickle.dump({"dsn": libpq_url(url), "public_key": public_pem, "routes": captured}, fh)
        capture_path = fh.name
    base_port = _free_port()
    baseline = _start(
        ["-m", "uvicorn", "tests.bench.bench_http:baseline_app", "--factory",
         "--host", "127.0.0.1", "--port", str(base_port), "--no-access-log",
         "--log-level", "warning"],
        {"BENCH_CAPTURE": capture_path},
    )  # fmt: skip
    figures: list[Figure] = []
    try:
        await _wait_up(base_port, baseline, "/nowhere")
        for endpoint in endpoints:
            port = _free_port()
            service = _start(
                ["-m", "tooling.cli", "api", endpoint.service, "--port", str(port)], env
            )
            try:
                await _wait_up(port, service)
                for connections in args.connections:
                    figure = await compare(
                        endpoint,
                        tokens[endpoint.name],
                        (port, service.pid),
                        (base_port, baseline.pid),
                        connections,
                        seconds=args.seconds,
                        rounds=args.rounds,
                        statements=len(captured[endpoint.path.split("?")[0]]),
                    )
                    figures.append(figure)
                    if not args.json:
                        _print_row(figure)
            finally:
                _stop(service)
    finally:
        _stop(baseline)
        os.unlink(capture_path)
    return figures


def _print_row(f: Figure) -> None:
    print(
        f"{f.endpoint:<44} c={f.connections:<3} scout {f.rps:>6,} req/s p50 {f.p50_ms:>6.2f}"
        f" p99 {f.p99_ms:>6.2f} | starlette {f.baseline_rps:>6,} req/s p50"
        f" {f.baseline_p50_ms:>6.2f} p99 {f.baseline_p99_ms:>6.2f} | {f.ratio:.2f}x"
        f" | cpu/req {f.cpu_us:,.0f} vs {f.baseline_cpu_us:,.0f} us = {f.cpu_ratio:.2f}x"
        f" ({f.statements} stmts{', ' + str(f.errors) + ' errors' if f.errors else ''})",
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
