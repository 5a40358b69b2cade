"""The service plumbing every Scout API shares.

- ``app.py`` — ``create_app``: lifespan-built engines, sessions, token verifier and NATS link;
  ``/healthz``, ``/readyz``, ``/metrics``, ``/docs``;
- ``deps.py`` — the route dependencies (``SessionDep``, ``ReadSessionDep``, ``CurrentUser``,
  ``CallerId``, ``AdminUser``, ``Quota``);
- ``errors.py`` — every error to ``{"code", "detail"}``;
- ``idempotency.py`` — ``Idempotency-Key`` on POSTs (``Idempotent``/``IDEMPOTENT``): the first
  response stored with the route's effects and replayed;
- ``middleware.py`` — correlation id, body-size limit, latency histogram;
- ``nats.py`` — the API's background NATS connection.
"""

from .app import create_app
from .deps import AdminUser, CallerId, CurrentUser, Quota, ReadSessionDep, SessionDep
from .errors import error_body
from .idempotency import IDEMPOTENT, Idempotent, Operation

__all__ = [
    "IDEMPOTENT",
    "AdminUser",
    "CallerId",
    "CurrentUser",
    "Idempotent",
    "Operation",
    "Quota",
    "ReadSessionDep",
    "SessionDep",
    "create_app",
    "error_body",
]
