"""``Idempotency-Key`` on POSTs: the first response is stored and replayed, never a second effect.

A route opts in with one parameter, ``operation: Idempotent`` (or ``dependencies=[IDEMPOTENT]``
when it does not need the :class:`Operation`); ``create_app`` wraps every such route. The
header is optional; with it, per caller and key:

- the first request *claims* the key (a ``processing`` row of ``idempotency_keys``, committed in
  a transaction of its own on the request's session, so concurrent requests see it) with a
  lease of :data:`LEASE`;
- its 2xx response is written to that row **in the route's own transaction** (``SessionDep``),
  so the effect and the stored response commit together or not at all;
- a repeat (same method, path and body) gets the stored status and body with
  ``Idempotent-Replayed: true``, for ``RETENTION_IDEMPOTENCY_KEYS_DAYS`` (1 day = 24 h); the
  same key with another method, path or body is 422 ``idempotency_key_reused``; a repeat while
  the first still runs is 409 ``idempotency_key_in_use``;
- an error (4xx, 5xx, validation) stores nothing and frees the key: Scout's errors leave no
  effect (the transaction rolled back, holds are given back), so a retry must be able to run.

A crashed first request leaves a ``processing`` row whose lease runs out: the next repeat takes
it over (``attempt`` + 1) and runs the operation again under the same :attr:`Operation.id`.
Services derive the ids of what they create and the keys of what they ask elsewhere (billing
reservations, Stripe) from that id, so the takeover finds the crashed attempt's hold instead of
taking a second one. A first request that is merely slow and outlives its lease is *fenced*:
its completion only matches the row while ``attempt`` is still its own, so it rolls back
instead of committing a second effect. The residual window: none for database effects; a key
stays 409 for up to :data:`LEASE` after its request crashed.
"""

import hashlib
import logging
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any

import orjson
import sqlalchemy as sa
from fastapi import Depends, FastAPI, Header, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, APIRouter, request_response
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from shared.db import forget_hooks
from shared.errors import IdempotencyKeyInUse, IdempotencyKeyReused
from shared.models.messaging import IdempotencyKey

from .deps import CurrentUser, SessionDep
from .openapi import raises

log = logging.getLogger("scout.idempotency")

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
# How long a claim holds a key while its request runs; a crashed request frees it after this.
LEASE = timedelta(seconds=60)
# Response headers worth replaying (the body's type; Location for a created resource).
KEPT_HEADERS = ("content-type", "location")
_WRAPPED = "_scout_idempotent"
KEY_PATTERN = r"^[\x21-\x7E]+$"  # 1 to 255 visible ASCII characters

keys: sa.Table = IdempotencyKey.__table__  # type: ignore[assignment]

_CLAIM = (
    pg_insert(keys)
    .values(
        {
            **{c: sa.bindparam(c) for c in ("service", "clerk_user_id", "key", "method", "path",
                                             "request_hash")},
            "status": "processing",
            "attempt": 1,
            "locked_until": sa.func.now() + LEASE,
        }
    )
    .on_conflict_do_nothing(index_elements=["clerk_user_id", "key"])
    .returning(keys.c.id, keys.c.attempt)
)  # fmt: skip
_READ = sa.select(
    keys.c.id,
    keys.c.method,
    keys.c.path,
    keys.c.request_hash,
    keys.c.status,
    keys.c.attempt,
    (keys.c.locked_until < sa.func.now()).label("lapsed"),
    (keys.c.created_at < sa.func.now() - sa.bindparam("window", type_=sa.Interval)).label("stale"),
    keys.c.response_status,
    keys.c.response_headers,
    keys.c.response_body,
).where(keys.c.clerk_user_id == sa.bindparam("clerk_user_id"), keys.c.key == sa.bindparam("key"))
_FORGET_STALE = keys.delete().where(
    keys.c.id == sa.bindparam("claim_id"),
    keys.c.created_at < sa.func.now() - sa.bindparam("window", type_=sa.Interval),
)
# Race: two repeats find the same lapsed claim; the attempt they saw lets only one take it.
_TAKE_OVER = (
    keys.update()
    .where(
        keys.c.id == sa.bindparam("claim_id"),
        keys.c.attempt == sa.bindparam("seen"),
        keys.c.status == "processing",
        keys.c.locked_until < sa.func.now(),
    )
    .values(attempt=keys.c.attempt + 1, locked_until=sa.func.now() + LEASE)
    .returning(keys.c.attempt)
)
# The fence: only the request holding the current attempt may complete (or free) the claim.
_COMPLETE = (
    keys.update()
    .where(
        keys.c.id == sa.bindparam("claim_id"),
        keys.c.attempt == sa.bindparam("claim_attempt"),
        keys.c.status == "processing",
    )
    .values(
        status="completed",
        response_status=sa.bindparam("stored_status"),
        response_headers=sa.bindparam("stored_headers", type_=keys.c.response_headers.type),
        response_body=sa.bindparam("stored_body", type_=keys.c.response_body.type),
        completed_at=sa.func.now(),
        locked_until=sa.func.now(),
    )
    .returning(keys.c.id)
)
_RELEASE = keys.delete().where(
    keys.c.id == sa.bindparam("claim_id"),
    keys.c.attempt == sa.bindparam("claim_attempt"),
    keys.c.status == "processing",
)


@dataclass(frozen=True)
class Operation:
    """One client operation: ``id`` is stable across the retries of one ``Idempotency-Key``
    (a fresh uuid without the header). Derive created ids and external keys from it."""

    id: uuid.UUID
    key: str | None = None
    attempt: int = 1


@dataclass(frozen=True)
class _Claim:
    id: uuid.UUID
    attempt: int


class _Replay(Exception):
    """The stored first response, answered instead of running the route again."""

    def __init__(self, row: Any) -> None:
        self.row = row


def request_hash(body: bytes) -> str:
    """sha256 of the body; a JSON body is hashed in canonical form (keys sorted, no spaces), so
    a client that re-serialises the same document is not taken for a different request."""
    try:
        canonical = orjson.dumps(orjson.loads(body), option=orjson.OPT_SORT_KEYS)
    except orjson.JSONDecodeError:
        canonical = body
    return hashlib.sha256(canonical).hexdigest()


@raises(IdempotencyKeyReused, IdempotencyKeyInUse)
async def operation(
    request: Request,
    principal: CurrentUser,
    session: SessionDep,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias=HEADER,
            min_length=1,
            max_length=255,
            pattern=KEY_PATTERN,
            description=(
                "Optional, 1 to 255 visible ASCII characters, scoped to the caller. A repeat of "
                "the same request with the same key within 24 h answers the first response "
                f"again (with `{REPLAYED}: true`) and has no second effect; the same key with "
                "another body is 422 `idempotency_key_reused`; a repeat while the first is "
                "still running is 409 `idempotency_key_in_use`."
            ),
        ),
    ] = None,
) -> Operation:
    """The route's :class:`Operation`, claiming ``Idempotency-Key`` when one is sent."""
    if idempotency_key is None:
        return Operation(uuid.uuid4())
    if not getattr(request.state, "idempotency_wrapped", False):  # a wiring bug: fail loudly
        raise RuntimeError(f"{request.url.path} takes Idempotent but create_app did not wrap it")
    params = {
        "service": request.app.state.service,
        "clerk_user_id": principal.clerk_user_id,
        "key": idempotency_key,
        "method": request.method,
        "path": request.url.path,
        "request_hash": request_hash(await request.body()),
    }
    window = timedelta(days=request.app.state.settings.retention_idempotency_keys_days)
    # On the request's own session (one pooled connection per request, however many wait), in
    # a transaction of its own: the claim is committed, so concurrent repeats see it at once.
    await session.commit()
    claim = await _claim(session, params, window)
    await session.commit()
    request.state.idempotency_claim = claim
    return Operation(claim.id, idempotency_key, claim.attempt)


async def _claim(conn: AsyncSession, params: dict[str, Any], window: timedelta) -> _Claim:
    """Take the key (new, or a lapsed claim) or raise what a repeat must answer instead."""
    for _ in range(3):  # a row may vanish (freed, pruned) or move between two statements
        if (row := (await conn.execute(_CLAIM, params)).first()) is not None:
            return _Claim(row.id, row.attempt)
        found = (await conn.execute(_READ, {**params, "window": window})).first()
        if found is None:
            continue
        if found.stale:  # older than the replay window: the key is free again
            await conn.execute(_FORGET_STALE, {"claim_id": found.id, "window": window})
            continue
        if (found.method, found.path, found.request_hash) != (
            params["method"], params["path"], params["request_hash"],
        ):  # fmt: skip
            raise IdempotencyKeyReused()
        if found.status == "completed":
            raise _Replay(found)
        if not found.lapsed:
            raise IdempotencyKeyInUse(headers={"Retry-After": "1"})
        taken = await conn.scalar(_TAKE_OVER, {"claim_id": found.id, "seen": found.attempt})
        if taken is not None:
            return _Claim(found.id, taken)
    raise IdempotencyKeyInUse(headers={"Retry-After": "1"})


Idempotent = Annotated[Operation, Depends(operation)]
IDEMPOTENT = Depends(operation)


# --- the route wrapper: store the response with the route's effects ------------------------


def install(app: FastAPI, routers: Iterable[APIRouter]) -> None:
    """Wrap every route of ``routers`` that depends on :func:`operation`, and answer replays.

    The wrapper goes around the route's handler (``get_route_handler``), which is what FastAPI
    runs for the route however it was included, inside the request's dependency scope: so the
    completion is written before ``SessionDep`` commits.
    """

    @app.exception_handler(_Replay)
    async def replay(request: Request, exc: _Replay) -> Response:
        headers = dict(exc.row.response_headers or {})
        return Response(
            exc.row.response_body or b"",
            status_code=exc.row.response_status,
            headers={**headers, REPLAYED: "true"},
        )

    for route in _api_routes(routers):
        if _depends_on(route.dependant, operation) and not hasattr(route, _WRAPPED):
            handler = route.get_route_handler
            route.get_route_handler = lambda handler=handler: _completing(handler())  # type: ignore[method-assign]
            route.app = request_response(route.get_route_handler())
            route.responses.setdefault(409, {"description": "`idempotency_key_in_use`"})
            setattr(route, _WRAPPED, True)


def _api_routes(routers: Iterable[APIRouter]) -> Iterator[APIRoute]:
    for router in routers:
        for route in router.routes:
            if isinstance(route, APIRoute):
                yield route
            elif isinstance(getattr(route, "original_router", None), APIRouter):
                yield from _api_routes([route.original_router])  # type: ignore[attr-defined]


def _depends_on(dependant: Dependant, call: Any) -> bool:
    return any(d.call is call or _depends_on(d, call) for d in dependant.dependencies)


class _LeaseLost(Exception):
    """This request's claim was taken over by a repeat after its lease ran out."""


def _completing(handler: Any) -> Any:
    """``handler`` (FastAPI's: dependencies, route, serialisation), then the claimed key's
    completion in the route's unit of work, committed before ``SessionDep`` exits. A failure
    frees the key; a request whose claim was taken over answers 409 and compensates nothing
    (the request that took over owns the operation's holds now)."""

    async def run(request: Request) -> Response:
        request.state.idempotency_wrapped = True
        try:
            response = await handler(request)
            await _complete(request, response)
        except BaseException as exc:
            if isinstance(exc, _LeaseLost) or await _release(request) is False:
                _forget_compensation(request)
                raise IdempotencyKeyInUse(headers={"Retry-After": "1"}) from exc
            raise
        return response

    return run


async def _complete(request: Request, response: Response) -> None:
    """Store a 2xx response on the claimed key, in the route's transaction, and commit both."""
    claim: _Claim | None = getattr(request.state, "idempotency_claim", None)
    if claim is None:
        return
    body = getattr(response, "body", None)
    if not 200 <= response.status_code < 300 or body is None:
        await _release(request)  # only successes are replayed
        return
    stored = {
        "claim_id": claim.id,
        "claim_attempt": claim.attempt,
        "stored_status": response.status_code,
        "stored_headers": {k: v for k, v in response.headers.items() if k.lower() in KEPT_HEADERS},
        "stored_body": bytes(body),
    }
    session: AsyncSession = request.state.unit_of_work
    if await session.scalar(_COMPLETE, stored) is None:
        raise _LeaseLost()
    await session.commit()


async def _release(request: Request) -> bool | None:
    """Free the key this request claimed (its operation failed: nothing to replay). True when
    freed, False when the claim is no longer this request's (taken over), None when there was
    no claim or the database could not be asked. The request's transaction is rolled back
    first, on its own connection (no second one is taken from the pool while it is held)."""
    claim: _Claim | None = getattr(request.state, "idempotency_claim", None)
    if claim is None:
        return None
    request.state.idempotency_claim = None
    session: AsyncSession = request.state.unit_of_work
    params = {"claim_id": claim.id, "claim_attempt": claim.attempt}
    try:
        await session.rollback()
        freed = (await session.execute(_RELEASE, params)).rowcount > 0
        await session.commit()
    except Exception as exc:  # the database is away: the lease frees the key shortly
        log.warning(
            "idempotency.release_failed", extra={"claim": str(claim.id), "error": repr(exc)}
        )
        return None
    return freed


def _forget_compensation(request: Request) -> None:
    session: AsyncSession | None = getattr(request.state, "unit_of_work", None)
    if session is not None:
        forget_hooks(session)
