"""``scout dev``: run the whole suite locally — four APIs and four workers — in one command.

Every port it will listen on is checked first (APIs, worker metrics, the embedded servers when
it needs them): a taken port stops it before anything starts, with one line naming the port
and what holds it. Postgres and NATS come from ``DATABASE_URL``/``NATS_URL``, else the servers
on the default local ports, else embedded servers (pip packages) started on those same ports,
with their data under the user's data directory. Without ``DATABASE_URL`` the suite uses a
database of its own, ``scout``, created when missing (never the server's maintenance
database). The database is migrated, the streams provisioned, then every service process
starts as a child with a coloured, prefixed log. Ctrl-C (or SIGTERM) stops the children, then
the embedded servers.
"""

import asyncio
import os
import signal
import sys
import time
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

import httpx
import typer

from shared.auth import data_dir, ensure_dev_key_pair
from shared.events.streams import connect, ensure_streams
from shared.settings import DEFAULT_NATS_URL, LOCAL_POSTGRES_URL, Settings
from shared.worker import SERVICES
from tooling import migrate
from tooling.cli.output import console, err_console
from tooling.infra import (
    InfrastructureUnavailable,
    Resolved,
    ensure_database,
    nats_answers,
    postgres_answers,
    resolve_nats,
    resolve_postgres,
)
from tooling.ports import Port, first_taken
from tooling.supervisor import Supervisor

DATABASE_NAME = "scout"
ROOT = Path(__file__).resolve().parents[2]

OWNS = {
    "identity": "users, onboarding, Clerk webhooks, admin, runtime config",
    "billing": "plans, subscriptions, trials, usage and limits, Stripe",
    "campaign": "campaigns, creator lists, CSV export, dashboard",
    "scraping": "search jobs, results, workers, creator providers",
}


def _worker_metrics_port(service: str, api_port: int) -> int:
    """``<SERVICE>_WORKER_METRICS_PORT``, else the API port + 1000 (never moved silently)."""
    given = os.environ.get(f"{service.upper()}_WORKER_METRICS_PORT")
    return int(given) if given else api_port + 1000


def _ports(settings: Settings, services: list[str], host: str) -> list[Port]:
    """Every port this run will listen on, with what to do when one is taken."""
    ports = []
    for service in services:
        api = getattr(settings, f"{service}_port")
        variable = f"{service.upper()}_PORT"
        ports.append(Port(api, f"{service} API", f"set {variable} to another port", host))
        variable = f"{service.upper()}_WORKER_METRICS_PORT"
        ports.append(
            Port(
                _worker_metrics_port(service, api),
                f"{service} worker metrics",
                f"set {variable} to another port",
                host,
            )
        )
    # Embedded servers listen where a local server would (so every other tool finds them
    # there); they are needed only when no URL is given and nothing answers on that port.
    if not os.environ.get("DATABASE_URL") and postgres_answers(LOCAL_POSTGRES_URL) is not None:
        ports.append(
            Port(_port(LOCAL_POSTGRES_URL), "embedded Postgres", "set DATABASE_URL to a Postgres")
        )
    if not os.environ.get("NATS_URL") and nats_answers(DEFAULT_NATS_URL) is not None:
        ports.append(Port(_port(DEFAULT_NATS_URL), "embedded NATS", "set NATS_URL to a NATS"))
    return ports


def _port(url: str) -> int:
    return urlsplit(url).port or 0


def dev(
    ready_timeout: Annotated[
        float, typer.Option(help="Seconds to wait for every service to be ready.")
    ] = 60.0,
    reload: Annotated[bool, typer.Option(help="Restart APIs when code changes.")] = False,
    host: Annotated[str, typer.Option(help="Interface the APIs bind.")] = "127.0.0.1",
    only: Annotated[
        list[str] | None, typer.Option("--service", help="Run only these services.")
    ] = None,
    colour: Annotated[bool | None, typer.Option("--colour/--no-colour")] = None,
) -> None:
    """Run migrations, provision streams, start every API and worker; Ctrl-C stops them all."""
    services = list(only or SERVICES)
    unknown = sorted(set(services) - set(SERVICES))
    if unknown:
        raise typer.BadParameter(f"unknown service(s) {unknown}; choose from {list(SERVICES)}")
    started = time.monotonic()
    taken = first_taken(_ports(Settings(), services, host))
    if taken:
        err_console.print(f"[red]scout dev: {taken}[/]")
        raise typer.Exit(2)
    resolved: list[Resolved] = []
    try:
        try:
            pg = resolve_postgres(
                try_docker=False,
                embedded_dir=data_dir() / "postgres",
                embedded_port=_port(LOCAL_POSTGRES_URL),
            )
            resolved.append(pg)
            nats = resolve_nats(
                try_docker=False,
                embedded_dir=data_dir() / "nats",
                embedded_port=_port(DEFAULT_NATS_URL),
            )
            resolved.append(nats)
        except InfrastructureUnavailable as exc:
            err_console.print(f"[red]{exc}[/]")
            raise typer.Exit(2) from exc
        database_url, created = own_database(pg)
        if created:
            console.print(f"[green]✓[/] created the database {DATABASE_NAME!r}")
        console.print(f"[green]✓[/] Postgres ({pg.source}): {_safe(database_url)}")
        console.print(f"[green]✓[/] NATS ({nats.source}): {nats.url}")
        migrate.upgrade(database_url, "head")
        console.print(
            f"[green]✓[/] database migrated to {', '.join(migrate.status(database_url).current)}"
        )
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "NATS_URL": nats.url,
            "PYTHONUNBUFFERED": "1",
            "_TYPER_STANDARD_TRACEBACK": "1",  # plain tracebacks read better behind a prefix
            "COLUMNS": os.environ.get("COLUMNS", "200"),
        }
        settings = Settings(**{"database_url": database_url, "nats_url": nats.url})
        streams = asyncio.run(_ensure_streams(settings))
        console.print(f"[green]✓[/] streams ready: {', '.join(streams)}")
        if settings.scout_env != "production" and not (
            settings.auth_public_key or settings.auth_jwks_url
        ):
            ensure_dev_key_pair()
        code = asyncio.run(
            _run(
                settings,
                env,
                services,
                host,
                reload,
                ready_timeout,
                colour,
                started,
                None if pg.source == "env" else database_url,  # yours stays unprinted
            )
        )
    finally:
        for r in reversed(resolved):
            r.close()
    raise typer.Exit(code)


def own_database(pg: Resolved, name: str = DATABASE_NAME) -> tuple[str, bool]:
    """The database the suite runs in, and whether it was just created: ``DATABASE_URL``'s
    when given; on a server found or started here, a database of Scout's own (``name``),
    created when missing, never the server's maintenance database."""
    if pg.source == "env":
        return pg.url, False
    return ensure_database(pg.url, name)


def _safe(url: str) -> str:
    return url.split("@")[-1]


async def _ensure_streams(settings: Settings) -> list[str]:
    nc = await connect(settings.nats_url, name="scout-dev")
    try:
        return await ensure_streams(nc.jetstream(), settings.scout_nats_prefix)
    finally:
        await nc.close()


async def _run(
    settings: Settings,
    env: dict[str, str],
    services: list[str],
    host: str,
    reload: bool,
    ready_timeout: float,
    colour: bool | None,
    started: float,
    shown_database_url: str | None,
) -> int:
    sup = Supervisor(colour=colour)
    python = [sys.executable, "-m", "tooling.cli"]
    endpoints: dict[str, str] = {}
    for service in services:
        port = getattr(settings, f"{service}_port")
        argv = [*python, "api", service, "--host", host, "--port", str(port)]
        sup.add(f"{service}-api", argv + (["--reload"] if reload else []), env)
        endpoints[f"{service}-api"] = f"http://{host}:{port}"
    for service in services:
        mport = _worker_metrics_port(service, getattr(settings, f"{service}_port"))
        worker_env = {**env, "WORKER_METRICS_PORT": str(mport), "WORKER_METRICS_HOST": host}
        sup.add(f"{service}-worker", [*python, "worker", service], worker_env)
        endpoints[f"{service}-worker"] = f"http://{host}:{mport}"

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await sup.start_all()
    try:
        failed = await _wait_ready(sup, endpoints, ready_timeout, stop)
        if failed:
            err_console.print(f"[red bold]scout dev could not start the suite:[/]\n{failed}")
            return 1
        if stop.is_set():
            return 0
        _summary(settings, services, endpoints, time.monotonic() - started, shown_database_url)
        exits = asyncio.create_task(sup.exit_event.wait())
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait([exits, stopping], return_when=asyncio.FIRST_COMPLETED)
        exits.cancel()
        stopping.cancel()
        if not stop.is_set():
            report = "\n".join(sup.describe_exit(c) for c in sup.exited())
            err_console.print(
                f"[red bold]a service process stopped; stopping the suite:[/]\n{report}"
            )
            return 1
        console.print("[yellow]stopping the suite…[/]")
        return 0
    finally:
        await sup.stop_all()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


async def _wait_ready(
    sup: Supervisor, endpoints: dict[str, str], limit: float, stop: asyncio.Event
) -> str | None:
    """None once every API's and every worker's /readyz answers 200; else why not."""
    pending = dict(endpoints)
    deadline = time.monotonic() + limit
    async with httpx.AsyncClient(timeout=1.0) as client:
        while pending and not stop.is_set():
            exited = sup.exited()
            if exited:
                return "\n".join(sup.describe_exit(c) for c in exited)
            if time.monotonic() > deadline:
                names = ", ".join(sorted(pending))
                return f"not ready within {limit:.0f} s: {names}"
            for name, base in list(pending.items()):
                try:
                    if (await client.get(base + "/readyz")).status_code == 200:
                        del pending[name]
                        sup.say(f"{sup.prefix(sup_child(sup, name))} ready")
                except httpx.HTTPError:
                    pass
            await asyncio.sleep(0.2)
    return None


def sup_child(sup: Supervisor, name: str):
    return next(c for c in sup.children if c.name == name)


def _scout_command() -> str:
    """How to run ``scout`` from where the user is: the repository's wrapper (which needs no
    activated virtualenv), relative when they are at the repository's root."""
    wrapper = ROOT / "scripts" / "scout"
    if not wrapper.exists():
        return "scout"
    return "./scripts/scout" if Path.cwd() == ROOT else str(wrapper)


def _summary(
    settings: Settings,
    services: list[str],
    endpoints: dict[str, str],
    took: float,
    shown_database_url: str | None,
) -> None:
    # One write, so that a reader of the log (a supervisor, a test waiting for "Scout is up")
    # never sees half the summary, nor a worker's log line in the middle of it.
    with console:
        console.print(f"\n[green bold]Scout is up[/] in {took:.1f} s — Ctrl-C stops everything.\n")
        for service in services:
            api = endpoints[f"{service}-api"]
            console.print(
                f"  [bold]{service:<9}[/] {api}  docs {api}/docs  metrics {api}/metrics  "
                f"worker metrics {endpoints[f'{service}-worker']}/metrics  [dim]({OWNS[service]})[/]"
            )
        console.print("\n[bold]Development settings[/] (defaults; set the variables to override):")
        if shown_database_url:
            console.print(f"  DATABASE_URL={shown_database_url}")
        console.print(f"  NATS_URL={settings.nats_url}")
        console.print(f"  CLERK_WEBHOOK_SECRET={settings.clerk_webhook_secret}")
        console.print(f"  STRIPE_WEBHOOK_SECRET={settings.stripe_webhook_secret}")
        if settings.scout_nats_prefix:
            console.print(f"  SCOUT_NATS_PREFIX={settings.scout_nats_prefix}")
        scout = _scout_command()
        identity = endpoints.get("identity-api", f"http://127.0.0.1:{settings.identity_port}")
        console.print("\n[bold]Try it[/] (in another shell):")
        console.print(
            f'  curl -H "Authorization: Bearer $({scout} dev-token user_123)" {identity}/me'
        )
        if settings.local_billing:
            console.print(
                f"  {scout} billing subscribe user_123 --plan growth"
                "   [dim](a plan without Stripe: billing sells it locally)[/]"
            )
        console.print("")
