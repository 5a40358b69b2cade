"""Every error becomes ``{"code", "detail"}`` with the right status; no route formats one."""

import logging
from http import HTTPStatus
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.errors import ScoutError

log = logging.getLogger("scout.web")


def error_body(code: str, detail: str, **extra: Any) -> dict[str, Any]:
    return {"code": code, "detail": detail, **extra}


def _status_code_name(status: int) -> str:
    try:
        return HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        return "http_error"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ScoutError)
    async def scout_error(request: Request, exc: ScoutError) -> JSONResponse:
        return JSONResponse(
            error_body(exc.code, exc.detail, **exc.extra), exc.status_code, headers=exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
        where = ".".join(str(p) for p in first["loc"] if p != "body") or "request"
        return JSONResponse(
            error_body("validation_error", f"{where}: {first['msg']}", errors=errors), 422
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = "not_found" if exc.status_code == 404 else _status_code_name(exc.status_code)
        detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        return JSONResponse(error_body(code, detail), exc.status_code, headers=exc.headers)

    @app.exception_handler(DBAPIError)
    async def database_error(request: Request, exc: DBAPIError) -> JSONResponse:
        if exc.connection_invalidated or isinstance(exc, sa.exc.OperationalError):
            return JSONResponse(
                error_body("dependency_unavailable", "The database is unavailable; try again."), 503
            )
        log.exception("unhandled database error", extra={"path": request.url.path})
        return JSONResponse(error_body("internal_error", "An internal error occurred."), 500)

    @app.exception_handler(Exception)
    async def unhandled(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", extra={"path": request.url.path})
        return JSONResponse(error_body("internal_error", "An internal error occurred."), 500)
