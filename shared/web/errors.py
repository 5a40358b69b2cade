"""Every error becomes ``{"code", "detail"}`` with the right status; no route formats one."""

import logging
import re
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.errors import ScoutError
from shared.events.failures import is_transient

log = logging.getLogger("scout.web")


def error_body(code: str, detail: str, **extra: Any) -> dict[str, Any]:
    return {"code": code, "detail": detail, **extra}


# ``<OnboardingStep.info_captured: 'info_captured'>`` → ``'info_captured'``: pydantic lists an
# enum-typed literal's allowed values as Python reprs; people need the values they can send.
_ENUM_REPR = re.compile(r"<[A-Za-z_][\w.]*: ('[^']*'|\"[^\"]*\"|[^<>]*)>")


def _issue(error: dict[str, Any]) -> dict[str, Any]:
    loc = list(error.get("loc", ()))
    ctx = error.get("ctx") or {}
    if error.get("type") in ("union_tag_invalid", "union_tag_not_found") and ctx.get(
        "discriminator"
    ):
        loc.append(str(ctx["discriminator"]).strip("'"))  # name the field that picks the shape
    return {
        "loc": loc,
        "msg": _ENUM_REPR.sub(r"\1", error.get("msg", "")),
        "type": error.get("type", ""),
    }


def _where(loc: list[Any]) -> str:
    """``body.items.0.platform`` → ``items.0.platform``; a whole-body problem says ``body``."""
    inner = [str(p) for p in loc[1:]] if loc and loc[0] == "body" else [str(p) for p in loc]
    return ".".join(inner) or (str(loc[0]) if loc else "request")


def _status_code_name(status: int) -> str:
    try:
        return HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        return "http_error"


def unhandled_answer(
    exc: BaseException, method: str, path: str, *, log_bug: bool = True
) -> tuple[int, dict[str, Any], dict[str, str]]:
    """Status, body and headers for an exception no handler took, logged once.

    The same classification the workers retry by: a database that is down, restarting or out of
    pool connections (or a lock or statement timeout) is a 503 the client may retry, logged as a
    warning; anything else is a bug: 500, logged with its traceback (unless ``log_bug`` is off,
    where the server logs it).
    """
    if is_transient(exc):
        log.warning(
            "web.dependency_unavailable", extra={"method": method, "path": path, "error": repr(exc)}
        )
        body = error_body("dependency_unavailable", "A dependency is unavailable; try again.")
        return 503, body, {"Retry-After": "1"}
    if log_bug:
        log.error("unhandled error", exc_info=exc, extra={"method": method, "path": path})
    return 500, error_body("internal_error", "An internal error occurred."), {}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ScoutError)
    async def scout_error(request: Request, exc: ScoutError) -> JSONResponse:
        return JSONResponse(
            error_body(exc.code, exc.detail, **exc.extra), exc.status_code, headers=exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [_issue(e) for e in exc.errors()]
        first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
        return JSONResponse(
            error_body(
                "validation_error", f"{_where(first['loc'])}: {first['msg']}", errors=errors
            ),
            422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and exc.__cause__ is not None:
            # FastAPI's body reader failed on bytes that are not text (malformed JSON it
            # reports as a validation error): the same answer for both, 422 ``json_invalid``.
            issue = {"loc": ["body"], "msg": "The body is not UTF-8 JSON.", "type": "json_invalid"}
            return JSONResponse(
                error_body("validation_error", f"body: {issue['msg']}", errors=[issue]), 422
            )
        code = "not_found" if exc.status_code == 404 else _status_code_name(exc.status_code)
        detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        return JSONResponse(error_body(code, detail), exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def unhandled(request: Request, exc: Exception) -> JSONResponse:
        # Only for an exception raised outside RequestContextMiddleware (which answers every
        # other one): the server logs a bug's traceback after this answer, so it is not logged.
        status, body, headers = unhandled_answer(
            exc, request.method, request.url.path, log_bug=False
        )
        return JSONResponse(body, status, headers=headers)
