"""Domain errors with an HTTP status and a stable machine-readable ``code``.

One style everywhere: each service declares its errors as classes in its ``errors.py``,
subclassing these bases (status) and naming a ``code`` (and a default ``detail``), and raises
instances: ``raise CampaignNotFound()``. ``shared.web`` maps them (and validation/HTTP errors)
to ``{"code": ..., "detail": ...}`` bodies, so no route formats an error by hand.
"""

from typing import Any


class ScoutError(Exception):
    status_code = 400
    code = "bad_request"
    detail = "The request could not be processed."

    def __init__(
        self,
        detail: str | None = None,
        *,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        """``detail`` overrides the class's sentence; ``code`` is for errors relayed from
        another service (request/reply), whose code is only known at run time."""
        self.detail = detail or type(self).detail
        super().__init__(self.detail)
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
    detail = "A valid bearer token is required."

    def __init__(self, detail: str | None = None, **kw: Any) -> None:
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
    detail = "A dependency (the database, NATS or another service) is unavailable; try again."


# --- errors every service can answer ---------------------------------------------------------


class AdminRequired(Forbidden):
    code = "admin_required"
    detail = "This route is for administrators."


class UserNotFound(NotFound):
    """The caller (or the named user) has no live account."""

    code = "user_not_found"
    detail = "No account for this user yet (identity creates it on GET /me)."


class InvalidSignature(BadRequest):
    """A webhook whose signature is missing, wrong or too old: nothing is written."""

    code = "invalid_signature"
    detail = "The webhook signature is missing, invalid or too old."


class InvalidPayload(BadRequest):
    """A verified webhook whose body is not the event it should be."""

    code = "invalid_payload"
    detail = "The webhook body is not a valid event."


class IdempotencyKeyReused(ScoutError):
    status_code = 422
    code = "idempotency_key_reused"
    detail = (
        "This Idempotency-Key was used for a different request (method, path or body); "
        "use a new key for a new request."
    )


class IdempotencyKeyInUse(Conflict):
    code = "idempotency_key_in_use"
    detail = "A request with this Idempotency-Key is still running; retry in a moment."
