"""``scout api <service>`` and ``scout worker <service>``: run one process of one service."""

import asyncio
import signal
from typing import Annotated

import typer
import uvicorn

from shared.logging import configure_logging
from shared.settings import get_settings
from shared.web.eventloop import UVICORN_LOOP
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
        loop=UVICORN_LOOP,
    )


def worker(service: ServiceArg) -> None:
    """Run one service's worker: outbox relay, event consumers, request/reply, scheduler."""
    _check(service)
    settings = get_settings()
    configure_logging(service=service, level=settings.log_level, fmt=settings.log_format)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        # run_worker also serves WORKER_METRICS_PORT (metrics, /healthz, /readyz) once started.
        await run_worker(service, settings=settings, stop=stop)

    asyncio.run(main())
