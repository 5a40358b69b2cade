"""The dependencies every route uses, defined once as ``Annotated`` aliases.

``SessionDep`` is the request's unit of work (committed before the response is sent);
``ReadSessionDep`` an autocommit session for GETs that only read. ``CurrentUser`` is the
verified caller, ``CallerId`` their live user id (what every query is scoped by), ``AdminUser``
an administrator, and ``Quota`` the client for asking billing about quota.
"""

import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Annotated

import sqlalchemy as sa
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.types import Scope

from shared.auth import Principal
from shared.db import run_hooks
from shared.errors import AdminRequired, DependencyUnavailable, Unauthorized, UserNotFound
from shared.events.health import DatabaseHealth
from shared.models import User
from shared.queries.sessions import release
from shared.queries.users import live_user_id
from shared.quota import BillingUnavailable, NoActivePlan, QuotaClient, ReservationClosed

from .openapi import raises


class DatabaseUnavailable(DependencyUnavailable):
    detail = "The database is unreachable; try again shortly."


def database_gate(request: Request) -> DatabaseHealth | None:
    """The process's database gate; 503 at once while it is closed (the database is known to
    be away: no request waits on a connection meanwhile, and the gate's probe reopens it).
    Anything reaching the database outside ``SessionDep``/``ReadSessionDep`` calls it first."""
    health: DatabaseHealth | None = getattr(request.app.state, "db_health", None)
    if health is not None and not health.healthy:
        raise DatabaseUnavailable(headers={"Retry-After": "1"})
    return health


def report_failure(health: DatabaseHealth | None, exc: BaseException) -> None:
    """A failure that shows the database unreachable closes the gate for every request."""
    if health is not None and isinstance(exc, Exception):
        health.report(exc)


@raises(DependencyUnavailable)
async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's unit of work: committed when the route returns, rolled back on error;
    then the hooks the route registered for that outcome (``shared.db.after_commit`` /
    ``after_rollback``) run, before the response is sent."""
    health = database_gate(request)
    async with request.app.state.sessions() as session:
        # The idempotency wrapper writes the stored response in this same transaction.
        request.state.unit_of_work = session
        try:
            yield session
            if session.in_transaction():  # anything the route did (even an add) began one
                await session.commit()
        except BaseException as exc:
            report_failure(health, exc)
            await session.rollback()
            await run_hooks(session, committed=False)
            raise
        await run_hooks(session, committed=True)


# scope="function": commit before the response is sent, so a 2xx always means "committed".
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


@raises(DependencyUnavailable)
async def get_read_session(request: Request) -> AsyncSession:
    """A read-only request's session: autocommit, so no ``BEGIN``/``COMMIT`` round trips.

    Each statement is its own snapshot; for GETs that only read. Never write through it. Its
    driver-path reads run on the engine's read pool and hold nothing between statements; a
    session that ran ORM or Core statements holds a connection until the response has been
    sent, when :func:`close_read_session` (called by the request middleware) gives it back.
    A plain function rather than a generator: no exit stack per request for a session that,
    as most do, never touches SQLAlchemy's pool. A failure that shows the database away
    reaches the middleware, which closes the gate.
    """
    database_gate(request)
    session = request.app.state.read_sessions()
    request.scope[READ_SESSION] = session
    return session


READ_SESSION = "scout.read_session"
# Postgres text cannot hold NUL: a query string or tag with one is a 422 here, never a 500 there.
NO_NUL = r"^[^\x00]*$"


async def close_read_session(scope: Scope) -> None:
    """Give back the connection the request's read session holds, if it took one."""
    session: AsyncSession | None = scope.pop(READ_SESSION, None)
    if session is not None:
        # A connection that cannot be given back cleanly is discarded by the pool; the
        # answer has been decided already and stays as it is.
        with contextlib.suppress(Exception):
            await release(session)


ReadSessionDep = Annotated[AsyncSession, Depends(get_read_session)]

_bearer = HTTPBearer(auto_error=False, description="RS256 JWT; `sub` is the Clerk user id.")


@raises(Unauthorized)
async def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or not credentials.credentials:
        raise Unauthorized()
    return await request.app.state.verifier.verify(credentials.credentials)


CurrentUser = Annotated[Principal, Depends(current_principal)]


@raises(UserNotFound)
async def caller_id(principal: CurrentUser, reads: ReadSessionDep) -> uuid.UUID:
    """The caller's live internal user id (one statement), or 404 ``user_not_found``.

    Looked up in autocommit on the read session, whatever the method: a GET's own session
    (FastAPI hands the route the same one), and for a write a read outside its transaction,
    which adds no round trip (the write's ``BEGIN`` goes with its own first statement) and
    loses nothing (a lookup inside the transaction would take no lock either).
    """
    user_id = await live_user_id(reads, principal.clerk_user_id)
    if user_id is None:
        raise UserNotFound()
    return user_id


CallerId = Annotated[uuid.UUID, Depends(caller_id)]


@raises(AdminRequired)
async def admin_principal(principal: CurrentUser, session: SessionDep) -> Principal:
    is_admin = await session.scalar(
        sa.select(User.is_admin).where(
            User.user_id == principal.clerk_user_id, User.deleted_at.is_(None)
        )
    )
    if not is_admin:
        raise AdminRequired()
    return principal


AdminUser = Annotated[Principal, Depends(admin_principal)]


@raises(BillingUnavailable, NoActivePlan, ReservationClosed)
async def quota_client(request: Request) -> QuotaClient:
    """Billing's quota client on this process's NATS link (not connected: it fails closed).
    ``async`` though it awaits nothing: FastAPI runs a plain ``def`` dependency in its thread
    pool, a thread hop per request for a constructor call.

    It holds the link's client itself, not a snapshot of "connected now", so a hold given back
    in the background gets through once NATS is back."""
    settings = request.app.state.settings
    return QuotaClient(
        request.app.state.nats.nc,
        settings.scout_nats_prefix,
        local_billing=settings.local_billing,
        timeout=settings.quota_timeout_seconds,
    )


Quota = Annotated[QuotaClient, Depends(quota_client)]
