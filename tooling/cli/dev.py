"""``scout dev``: run the whole suite locally — four APIs and four workers — in one command.

Postgres and NATS come from ``DATABASE_URL``/``NATS_URL``, else the default local ports, else
embedded servers (pip packages) whose data lives under the user's data directory. The database
is migrated, the streams provisioned, then every service process starts as a child with a
coloured, prefixed log. Ctrl-C (or SIGTERM) stops the children, then the embedded servers.
"""

import asyncio
import os
import signal
import sys
import time
from typing import Annotated

import httpx
import typer

from shared.auth import data_dir, ensure_dev_key_pair
from shared.events.streams import connect, ensure_streams
from shared.settings import Settings
from shared.worker import SERVICES
from tooling import migrate
from tooling.cli.output import console, err_console
from tooling.embedded import port_is_free
from tooling.infra import InfrastructureUnavailable, Resolved, resolve_nats, resolve_postgres
from tooling.supervisor import Supervisor

OWNS = {
    "identity": "users, onboarding, Clerk webhooks, admin, runtime config",
    "billing": "plans, subscriptions, trials, usage and limits, Stripe",
    "campaign": "campaigns, creator lists, CSV export, dashboard",
    "scraping": "search jobs, results, workers, creator providers",
}


def _worker_metrics_port(service: str, api_port: int) -> int:
    """``<SERVICE>_WORKER_METRICS_PORT``, else API port + 1000 when free, else any free port."""
    given = os.environ.get(f"{service.upper()}_WORKER_METRICS_PORT")
    if given:
        return int(given)
    from tooling.embedded import free_port

    return api_port + 1000 if port_is_free(api_port + 1000) else free_port()


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
    resolved: list[Resolved] = []
    try:
        try:
            pg = resolve_postgres(try_docker=False, embedded_dir=data_dir() / "postgres")
            resolved.append(pg)
            nats = resolve_nats(try_docker=False, embedded_dir=data_dir() / "nats")
            resolved.append(nats)
        except InfrastructureUnavailable as exc:
            err_console.print(f"[red]{exc}[/]")
            raise typer.Exit(2) from exc
        console.print(f"[green]✓[/] Postgres ({pg.source}): {_safe(pg.url)}")
        console.print(f"[green]✓[/] NATS ({nats.source}): {nats.url}")
        migrate.upgrade(pg.url, "head")
        console.print(
            f"[green]✓[/] database migrated to {', '.join(migrate.status(pg.url).current)}"
        )
        env = {
            **os.environ,
            "DATABASE_URL": pg.url,
            "NATS_URL": nats.url,
            "PYTHONUNBUFFERED": "1",
            "_TYPER_STANDARD_TRACEBACK": "1",  # plain tracebacks read better behind a prefix
            "COLUMNS": os.environ.get("COLUMNS", "200"),
        }
        settings = Settings(**{"database_url": pg.url, "nats_url": nats.url})
        streams = asyncio.run(_ensure_streams(settings))
        console.print(f"[green]✓[/] streams ready: {', '.join(streams)}")
        if settings.scout_env != "production" and not (
            settings.auth_public_key or settings.auth_jwks_url
        ):
            ensure_dev_key_pair()
        code = asyncio.run(
            _run(settings, env, services, host, reload, ready_timeout, colour, started)
        )
    finally:
        for r in reversed(resolved):
            r.close()
    raise typer.Exit(code)


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
        _summary(settings, services, endpoints, time.monotonic() - started)
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


def _summary(
    settings: Settings, services: list[str], endpoints: dict[str, str], took: float
) -> None:
    console.print(f"\n[green bold]Scout is up[/] in {took:.1f} s — Ctrl-C stops everything.\n")
    for service in services:
        api = endpoints[f"{service}-api"]
        console.print(
            f"  [bold]{service:<9}[/] {api}  docs {api}/docs  metrics {api}/metrics  "
            f"worker metrics {endpoints[f'{service}-worker']}/metrics  [dim]({OWNS[service]})[/]"
        )
    console.print("\n[bold]Development secrets[/] (defaults; set the variables to override):")
    console.print(f"  CLERK_WEBHOOK_SECRET={settings.clerk_webhook_secret}")
    console.print(f"  STRIPE_WEBHOOK_SECRET={settings.stripe_webhook_secret}")
    if settings.scout_nats_prefix:
        console.print(f"  SCOUT_NATS_PREFIX={settings.scout_nats_prefix}")
    console.print(
        "\n[bold]Token[/]: scout dev-token user_123  →  "
        f'curl -H "Authorization: Bearer $(scout dev-token user_123)" '
        f"{endpoints.get('identity-api', 'http://127.0.0.1:8001')}/me\n"
    )
