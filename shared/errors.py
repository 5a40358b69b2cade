"""Domain errors with an HTTP status and a stable machine-readable ``code``.

Services raise these; ``shared.web`` maps them (and validation/HTTP errors) to
``{"code": ..., "detail": ...}`` bodies, so no route formats an error by hand.
"""

from typing import Any


class ScoutError(Exception):
    status_code = 400
    code = "bad_request"

    def __init__(
        self,
        detail: str,
        *,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        if code:
            self.code = code
        self.headers = headers
        self.extra = extra or {}


class BadRequest(ScoutError):
    status_code = 400
    code = "bad_request"


class Unauthorized(ScoutError):
    status_code = 401
    code = "unauthorized"

    def __init__(self, detail: str = "A valid bearer token is required.", **kw: Any) -> None:
        kw.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(detail, **kw)


class Forbidden(ScoutError):
    status_code = 403
    code = "forbidden"


class NotFound(ScoutError):
    status_code = 404
    code = "not_found"


class Conflict(ScoutError):
    status_code = 409
    code = "conflict"


class LimitReached(ScoutError):
    """A plan limit would be exceeded (``campaign_limit_reached``, ``creators_limit_reached`` …)."""

    status_code = 403
    code = "limit_reached"


class RateLimited(ScoutError):
    status_code = 429
    code = "rate_limited"


class DependencyUnavailable(ScoutError):
    """Postgres, NATS or a peer service did not answer: fail closed with 503."""

    status_code = 503
    code = "dependency_unavailable"
