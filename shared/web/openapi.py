"""An OpenAPI document that tells the truth about errors, summaries and webhooks.

Every error Scout answers has one body, :class:`ErrorBody` (``code``, ``detail``, and
``errors`` for validation failures). The app factory (:func:`install_openapi`) rewrites each
operation's error responses from what the operation can really answer:

* what its dependencies raise — a dependency declares it with :func:`raises` (``CurrentUser``
  → 401 ``unauthorized``, ``CallerId`` → 404 ``user_not_found``, a session → 503
  ``dependency_unavailable``, ``Quota`` → 503 ``billing_unavailable`` and 403
  ``no_active_plan``, a rate limit → 429 …);
* what the route itself raises — declared with ``responses=error_responses(CampaignNotFound, …)``;
* 422 ``validation_error`` when it takes any parameter or body, 413 ``payload_too_large``
  when it takes a body.

Each error status lists its codes (in the description, and as ``x-error-codes``) and points
at ``ErrorBody``; FastAPI's ``HTTPValidationError`` never appears. An operation without an
explicit ``summary=`` gets its docstring's first sentence (never FastAPI's title-cased function
name); the docstring is its description. Webhook routes, which must read their raw body to
check a signature, document the body and signature headers with :func:`webhook_request`.
"""

from collections import defaultdict
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any, TypeVar

from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel, ConfigDict, Field

from shared.errors import ScoutError

REF = "#/components/schemas/{model}"
ERROR_BODY_REF = {"$ref": REF.format(model="ErrorBody")}
BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


class ValidationIssue(BaseModel):
    loc: list[str | int] = Field(
        description="Where: `body`, `query`, `path` or `header`, then the field."
    )
    msg: str = Field(description="What is wrong, for humans.")
    type: str = Field(description="Pydantic's error type, e.g. `missing`, `enum`.")


class ErrorBody(BaseModel):
    """The body of every error Scout answers (some codes add fields, e.g. ``retry_after``)."""

    model_config = ConfigDict(extra="allow")

    code: str = Field(description="Stable and machine-readable, e.g. `campaign_not_found`.")
    detail: str = Field(description="A sentence for humans.")
    errors: list[ValidationIssue] | None = Field(
        default=None, description="Validation errors only: every problem found."
    )


class ValidationFailed(ScoutError):
    """Documents 422 on every operation that takes input (``shared.web.errors`` answers it)."""

    status_code = 422
    code = "validation_error"
    detail = "The request does not match the schema; `errors` lists every problem."


class PayloadTooLarge(ScoutError):
    """Documents 413 on every operation that takes a body (the middleware answers it)."""

    status_code = 413
    code = "payload_too_large"
    detail = "Bodies are limited to 1 MiB."


ErrorClass = type[ScoutError]
F = TypeVar("F", bound=Callable[..., Any])


def raises(*classes: ErrorClass) -> Callable[[F], F]:
    """Declare the errors a dependency can raise; every route using it documents them."""

    def mark(dependency: F) -> F:
        dependency.__scout_errors__ = (*getattr(dependency, "__scout_errors__", ()), *classes)  # type: ignore[attr-defined]
        return dependency

    return mark


def _codes(classes: Iterable[ErrorClass]) -> dict[int, dict[str, str]]:
    by_status: dict[int, dict[str, str]] = defaultdict(dict)
    for cls in classes:
        by_status[cls.status_code].setdefault(cls.code, cls.detail)
    return by_status


def _response(status: int, codes: dict[str, str]) -> dict[str, Any]:
    lines = "\n".join(f"- `{code}`: {detail}" for code, detail in sorted(codes.items()))
    return {
        "description": f"{HTTPStatus(status).phrase}. Codes:\n{lines}",
        "content": {"application/json": {"schema": dict(ERROR_BODY_REF)}},
        "x-error-codes": dict(sorted(codes.items())),
    }


def error_responses(*classes: ErrorClass) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for the errors a route raises itself: ``error_responses(CampaignNotFound)``."""
    return {status: _response(status, codes) for status, codes in _codes(classes).items()}


def webhook_request(model: type[BaseModel], headers: dict[str, str]) -> dict[str, Any]:
    """``openapi_extra=`` for a webhook route that reads its raw body to verify a signature:
    the body's shape (``model``, documentation only) and the required signature headers."""
    _DOCUMENTED_MODELS[model.__name__] = model
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": REF.format(model=model.__name__)}}},
        },
        "parameters": [
            {
                "name": name,
                "in": "header",
                "required": True,
                "description": description,
                "schema": {"type": "string"},
            }
            for name, description in headers.items()
        ],
    }


# Models referenced by ``webhook_request`` bodies, added to the document's components.
_DOCUMENTED_MODELS: dict[str, type[BaseModel]] = {"ErrorBody": ErrorBody}


def _dependency_errors(dependant: Any) -> list[ErrorClass]:
    found: list[ErrorClass] = []
    for sub in dependant.dependencies:
        found += getattr(sub.call, "__scout_errors__", ())
        found += _dependency_errors(sub)
    return found


def _takes_input(route: Any) -> bool:
    d = route.dependant
    stack, params = [d], []
    while stack:
        node = stack.pop()
        params += node.path_params + node.query_params + node.header_params + node.cookie_params
        params += node.body_params
        stack += node.dependencies
    return bool(params) or bool(route.body_field)


def _summary(route: Any) -> str | None:
    if route.summary:
        return route.summary
    first = (route.description or "").strip().split("\n\n")[0].replace("\n", " ")
    sentence = first.split(". ")[0].rstrip(".")
    return sentence or None


def _document(app: FastAPI, schema: dict[str, Any]) -> None:
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    for model in _DOCUMENTED_MODELS.values():
        model_schema = model.model_json_schema(ref_template=REF)
        components.update(model_schema.pop("$defs", {}))
        components[model.__name__] = model_schema
    for context in iter_route_contexts(app.routes):
        route = context
        if not isinstance(context.original_route, APIRoute) or not route.include_in_schema:
            continue
        declared = [*_dependency_errors(route.dependant)]
        extra = route.openapi_extra or {}
        # Input FastAPI validates is answered 422; a webhook's documented body and headers are
        # checked by the route itself (400), so they add no 422.
        if _takes_input(route):
            declared.append(ValidationFailed)
        codes = _codes(declared)
        for status, response in (route.responses or {}).items():
            for code, detail in response.get("x-error-codes", {}).items():
                codes[int(status)].setdefault(code, detail)
        for method in route.methods or ():
            operation = schema["paths"][route.path_format][method.lower()]
            body = route.body_field is not None or "requestBody" in extra
            responses = operation.setdefault("responses", {})
            if body and method in BODY_METHODS:
                codes[413].setdefault(PayloadTooLarge.code, PayloadTooLarge.detail)
            for status, found in sorted(codes.items()):
                responses[str(status)] = _response(status, found)
            operation["responses"] = dict(sorted(responses.items()))
            responses = operation["responses"]
            for status, response in responses.items():
                if status[0] in "45":
                    response["content"] = {"application/json": {"schema": dict(ERROR_BODY_REF)}}
            summary = _summary(route)
            if summary:
                operation["summary"] = summary
            else:
                operation.pop("summary", None)  # FastAPI's title-cased function name says nothing


def install_openapi(app: FastAPI) -> None:
    """Make ``app.openapi()`` answer the document described above (built once, then cached)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            _document(app, generate())
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]
