"""The app factory every Scout API shares: lifespan-built resources, ops routes, error mapping.

``create_app`` builds engines and the NATS connection in the lifespan (never at import),
serves ``/healthz``, ``/readyz``, ``/metrics``, ``/openapi.json`` and an offline ``/docs``, and
maps every error to ``{"code", "detail"}`` with the right status.
"""

import importlib.util
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from shared.auth import TokenVerifier
from shared.db import engine_for, session_factory
from shared.errors import DependencyUnavailable
from shared.events.health import DatabaseHealth, Heartbeat
from shared.queries.sessions import read_session_factory
from shared.runtime import start_runtime
from shared.settings import Settings, get_settings

from . import idempotency
from .errors import error_body, install_error_handlers
from .health import monitoring, tune_gc
from .middleware import RequestContextMiddleware
from .nats import NatsLink
from .openapi import error_responses, install_openapi

# Swagger UI 5 (OpenAPI 3.1, which FastAPI emits) shipped inside the fastapi-offline wheel.
# The older swagger-ui-bundle (Swagger UI 3) cannot render 3.1: "does not specify a valid version".
SWAGGER_UI_ASSETS = Path(importlib.util.find_spec("fastapi_offline").origin).parent / "static"


class NotReady(DependencyUnavailable):
    """``/readyz`` when Postgres or NATS is unreachable (the body adds ``status`` and ``checks``)."""

    detail = "A dependency is unreachable."


Hook = Callable[[FastAPI], Awaitable[None]]


def _ops_router(service: str) -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", summary="Alive")
    async def healthz() -> dict[str, str]:
        """The process answers (it checks nothing else): for liveness probes."""
        return {"status": "ok", "service": service}

    @router.get(
        "/readyz",
        summary="Postgres and NATS reachable",
        responses=error_responses(NotReady),
    )
    async def readyz(request: Request) -> JSONResponse:
        """200 when this process reaches Postgres and NATS, else 503 with ``checks`` saying
        which one it cannot reach: for readiness probes and load balancers."""
        checks = {
            "postgres": request.app.state.db_heartbeat.fresh(),
            "nats": request.app.state.nats.connected,
        }
        ok = all(checks.values())
        body = {"status": "ready" if ok else "unavailable", "checks": checks}
        if not ok:
            body.update(error_body(NotReady.code, NotReady.detail))
        return JSONResponse(body, 200 if ok else 503)

    @router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @router.get("/docs", include_in_schema=False)
    async def docs() -> Response:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=f"Scout {service} API",
            swagger_js_url="/docs-static/swagger-ui-bundle.js",
            swagger_css_url="/docs-static/swagger-ui.css",
            swagger_favicon_url="/docs-static/favicon.png",
        )

    return router


def create_app(
    service: str,
    *,
    routers: Iterable[APIRouter] = (),
    startup: Iterable[Hook] = (),
    shutdown: Iterable[Hook] = (),
    description: str = "",
    settings: Settings | None = None,
) -> FastAPI:
    """A Scout service app: lifespan-built resources, ops routes, error mapping, middleware."""
    startup, shutdown, routers = list(startup), list(shutdown), list(routers)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        cfg = settings or get_settings()
        app.state.settings = cfg
        app.state.service = service
        app.state.engine = engine_for(cfg, application_name=f"scout-{service}")
        app.state.sessions = session_factory(app.state.engine)
        app.state.read_sessions = read_session_factory(app.state.engine)
        # While the database is known to be away, requests answer 503 at once (shared.web.deps)
        # instead of each waiting on a connection; /readyz reports the heartbeat.
        app.state.db_health = DatabaseHealth(app.state.engine, name=f"{service}-api")
        app.state.db_heartbeat = Heartbeat(app.state.db_health)
        await app.state.db_heartbeat.start()
        app.state.verifier = TokenVerifier(cfg)
        app.state.nats = NatsLink(cfg.nats_url, f"scout-{service}-api")
        await app.state.nats.start()
        # Hot config and log levels (platform.*.changed) reach this process too.
        app.state.runtime = await start_runtime(
            service,
            role="api",
            engine=app.state.engine,
            nats=lambda: app.state.nats.nc,
            prefix=cfg.scout_nats_prefix,
        )
        try:
            for hook in startup:
                await hook(app)
            tune_gc()  # after startup built what lives as long as the process
            async with monitoring(service, app.state.engine):
                yield
        finally:
            for hook in shutdown:
                await hook(app)
            await app.state.runtime.stop()
            await app.state.nats.close()
            await app.state.db_heartbeat.stop()
            app.state.db_health.close()
            await app.state.engine.dispose()

    app = FastAPI(
        title=f"Scout {service}",
        description=description,
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        # Scout's metrics are Prometheus (RequestContextMiddleware, health.py); FastAPI's own
        # OpenTelemetry stays off rather than looking for a provider on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    app.mount("/docs-static", StaticFiles(directory=SWAGGER_UI_ASSETS), name="docs-static")
    install_error_handlers(app)
    install_openapi(app)
    app.include_router(_ops_router(service))
    for router in routers:
        app.include_router(router)
    idempotency.install(app, routers)  # routes taking ``Idempotent`` store and replay answers
    app.add_middleware(RequestContextMiddleware, service=service)
    return app
