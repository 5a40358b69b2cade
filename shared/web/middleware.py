"""The pure-ASGI middleware every API runs: correlation id, body-size limit, latency histogram."""

import json
import time
from typing import Any

from prometheus_client import Histogram
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.context import bound, new_id

from .errors import error_body

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
        start = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", []).append(
                    (b"x-correlation-id", correlation_id.encode())
                )
            await send(message)

        with bound(correlation_id):
            try:
                await self.app(scope, _limited(receive, self.max_body), send_wrapper)
            finally:
                route = scope.get("route")
                template = getattr(route, "path", "unmatched")
                HTTP_LATENCY.labels(self.service, scope["method"], template, str(status)).observe(
                    time.perf_counter() - start
                )


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


async def _send_json(send: Send, status: int, body: dict[str, Any]) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
