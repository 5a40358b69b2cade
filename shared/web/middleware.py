"""The pure-ASGI middleware every API runs: correlation id, body-size limit, latency histogram,
and the one place an exception no handler took is logged and answered.

An exception no handler took is answered here (``shared.web.errors.unhandled_answer``: 503
``dependency_unavailable`` for a transient failure, else 500 ``internal_error``) and logged
once, with the request's correlation id; it is not raised further, because the server would
log the same traceback a second time.
"""

import json
import time
from typing import Any

from prometheus_client import Histogram
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.context import bound, new_id

from .deps import close_read_session
from .errors import error_body, unhandled_answer

MAX_BODY_BYTES = 1024 * 1024

HTTP_LATENCY = Histogram(
    "scout_http_request_duration_seconds",
    "HTTP request latency by service, route template and status.",
    ["service", "method", "route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)


class RequestContextMiddleware:
    """Correlation id in and out, a body-size limit, and the latency histogram (pure ASGI)."""

    def __init__(self, app: ASGIApp, service: str, max_body: int = MAX_BODY_BYTES) -> None:
        self.app, self.service, self.max_body = app, service, max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        incoming = headers.get(b"x-correlation-id", b"").decode("latin-1")
        correlation_id = (
            incoming if 0 < len(incoming) <= 100 and incoming.isprintable() else new_id()
        )
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            await _send_json(
                send,
                413,
                error_body("payload_too_large", f"Bodies are limited to {self.max_body} bytes."),
            )
            return
        status = 500
        started = False
        start = time.perf_counter()
        path, root_path = scope["path"], scope.get("root_path", "")

        async def send_wrapper(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status, started = message["status"], True
                message.setdefault("headers", []).append(
                    (b"x-correlation-id", correlation_id.encode())
                )
            await send(message)

        with bound(correlation_id):
            try:
                await self.app(scope, _limited(receive, self.max_body), send_wrapper)
            except Exception as exc:
                health = getattr(getattr(scope.get("app"), "state", None), "db_health", None)
                if health is not None:  # the database away: later requests answer 503 at once
                    health.report(exc)
                answer, body, answer_headers = unhandled_answer(exc, scope["method"], path)
                if not started:  # else the client sees the response cut short
                    status = answer
                    await _send_json(send_wrapper, answer, body, answer_headers)
            finally:
                await close_read_session(scope)
                template = getattr(scope.get("route"), "path", None) or _label(
                    scope, path, root_path
                )
                HTTP_LATENCY.labels(self.service, scope["method"], template, str(status)).observe(
                    time.perf_counter() - start
                )


def _label(scope: Scope, path: str, root_path: str) -> str:
    """The route label of a request FastAPI's routing did not tag: ``/openapi.json`` and other
    plain routes by their path, a mount (``/docs-static``) as ``<mount>/{path}``; a path no
    route matches is ``unmatched`` (one label, however many paths are probed)."""
    app = scope.get("app")
    probe = {"type": "http", "path": path, "root_path": root_path, "method": scope["method"]}
    for route in getattr(getattr(app, "router", None), "routes", ()):
        if isinstance(route, Route | Mount) and route.matches(probe)[0] is not Match.NONE:
            return f"{route.path}/{{path}}" if isinstance(route, Mount) else route.path
    return "unmatched"


def _limited(receive: Receive, limit: int) -> Receive:
    seen = 0

    async def wrapped() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise StarletteHTTPException(413, f"Bodies are limited to {limit} bytes.")
        return message

    return wrapped


async def _send_json(
    send: Send, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *((k.lower().encode(), v.encode()) for k, v in (headers or {}).items()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
