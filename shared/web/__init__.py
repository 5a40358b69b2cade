"""The service plumbing every Scout API shares.

- ``app.py`` — ``create_app``: lifespan-built engines, sessions, token verifier and NATS link;
  ``/healthz``, ``/readyz``, ``/metrics``, ``/docs``;
- ``deps.py`` — the route dependencies (``SessionDep``, ``ReadSessionDep``, ``CurrentUser``,
  ``CallerId``, ``AdminUser``, ``Quota``);
- ``errors.py`` — every error to ``{"code", "detail"}``;
- ``openapi.py`` — the OpenAPI document: ``ErrorBody`` on every error response an operation
  can give (from ``raises`` on dependencies and ``error_responses`` on routes), summaries,
  webhook bodies and signature headers;
- ``idempotency.py`` — ``Idempotency-Key`` on POSTs (``Idempotent``/``IDEMPOTENT``): the first
  response stored with the route's effects and replayed;
- ``middleware.py`` — correlation id, body-size limit, latency histogram;
- ``nats.py`` — the API's background NATS connection.
"""

from .app import create_app
from .deps import (
    NO_NUL,
    AdminUser,
    CallerId,
    CurrentUser,
    Quota,
    ReadSessionDep,
    SessionDep,
    database_gate,
    report_failure,
)
from .errors import error_body
from .idempotency import IDEMPOTENT, Idempotent, Operation
from .openapi import ErrorBody, error_responses, raises, webhook_request

__all__ = [
    "IDEMPOTENT",
    "NO_NUL",
    "AdminUser",
    "CallerId",
    "CurrentUser",
    "ErrorBody",
    "Idempotent",
    "Operation",
    "Quota",
    "ReadSessionDep",
    "SessionDep",
    "create_app",
    "database_gate",
    "error_body",
    "error_responses",
    "raises",
    "report_failure",
    "webhook_request",
]
