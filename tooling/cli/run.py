"""``scout api <service>`` and ``scout worker <service>``: run one process of one service."""

import asyncio
import contextlib
import signal
from typing import Annotated

import typer
import uvicorn

from shared.logging import configure_logging
from shared.settings import get_settings
from shared.worker import SERVICES, run_worker

ServiceArg = Annotated[str, typer.Argument(help=f"One of: {', '.join(SERVICES)}.")]


def _check(service: str) -> None:
    if service not in SERVICES:
        raise typer.BadParameter(f"unknown service {service!r}; one of {', '.join(SERVICES)}")


def api(
    service: ServiceArg,
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int | None, typer.Option(help="Default: <SERVICE>_PORT.")] = None,
    reload: Annotated[bool, typer.Option(help="Restart on code changes (development).")] = False,
) -> None:
    """Serve one service's HTTP API with uvicorn."""
    _check(service)
    settings = get_settings()
    configure_logging(service=service, level=settings.log_level, fmt=settings.log_format)
    uvicorn.run(
        f"services.{service}.api:create_app",
        factory=True,
        host=host,
        port=port or getattr(settings, f"{service}_port"),
        reload=reload,
        log_config=None,
        access_log=False,
        proxy_headers=True,
    )


def worker(service: ServiceArg) -> None:
    """Run one service's worker: outbox relay, event consumers, request/reply, scheduler."""
    _check(service)
    settings = get_settings()
    configure_logging(service=service, level=settings.log_level, fmt=settings.log_format)

    async def main() -> None:
        stop, ready = asyncio.Event(), asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        # Metrics (served once the worker is connected, so an answer means "started").
        observe = asyncio.create_task(_observe(service, settings, ready))
        try:
            await run_worker(service, settings=settings, stop=stop, ready=ready)
        finally:
            observe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await observe

    asyncio.run(main())


async def _observe(service: str, settings, ready: asyncio.Event) -> None:
    """Serve ``WORKER_METRICS_PORT`` and keep the sampled gauges fresh (shared.metrics)."""
    from shared import metrics
    from shared.db import make_engine
    from shared.events.streams import connect

    await ready.wait()
    if not settings.worker_metrics_port:
        return
    engine = make_engine(
        settings.database_url, pool_size=1, application_name=f"scout-{service}-metrics"
    )
    nc = await connect(settings.nats_url, name=f"scout-{service}-metrics")
    fresh = metrics.Freshness(max_age=20.0)
    fresh.connected = lambda: nc.is_connected
    try:
        with metrics.serving(settings.worker_metrics_port, settings.worker_metrics_host, fresh):
            await metrics.sample_forever(
                engine, nc.jetstream(), service, settings.scout_nats_prefix, freshness=fresh
            )
    finally:
        await nc.close()
        await engine.dispose()
