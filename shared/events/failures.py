"""One classification of failures for every part that retries: consumers, relay, RPC, scheduler.

*Transient* means "a dependency is away or busy; the same work will succeed later": it is retried
for as long as it takes and never counts as an attempt. *Permanent* is everything else (a bug,
bad data, a rule the work breaks): it is retried a few times, then dead-lettered or failed.

Transient:
- Postgres unreachable: connection refused or lost, a connection SQLAlchemy invalidated, a
  connect timeout, the server shutting down or starting (57P01 to 57P03), too many connections.
  These also say "the database is down" (:func:`is_database_unavailable`): the health gate
  stops fetching work until a probe gets an answer.
- Postgres busy: pool checkout timeout, serialization failure, deadlock, lock not available,
  a statement or lock timeout (57014), insufficient resources (class 53).
- NATS unreachable (connection closed, no servers, timeouts, JetStream answering 503),
  request/reply with no responders or no answer (:class:`DependencyUnavailable`), a request/reply
  peer answering 5xx (the request/reply client raises those as :class:`DependencyUnavailable`).
- Anything raised as :class:`TransientError` (a provider's 5xx/429/timeout, Stripe down).
"""

import socket

import nats.errors
import nats.js.errors
import psycopg
import sqlalchemy as sa

from shared.errors import DependencyUnavailable

# SQLSTATEs of a server that cannot serve right now (shutting down, starting, out of slots).
_UNAVAILABLE_STATES = frozenset({"57P01", "57P02", "57P03", "53300"})
# SQLSTATEs of work that conflicted or waited too long: the same work succeeds when retried.
_RETRYABLE_STATES = frozenset({"40001", "40P01", "55P03", "57014"})
# NATS errors of a connection that is away or slow (not of a bad subject or permissions).
_NATS_UNAVAILABLE = (
    nats.errors.TimeoutError,
    nats.errors.NoRespondersError,
    nats.errors.StaleConnectionError,
    nats.errors.OutboundBufferLimitError,
    nats.errors.ConnectionClosedError,
    nats.errors.NoServersError,
    nats.errors.ConnectionDrainingError,
    nats.errors.ConnectionReconnectingError,
    nats.errors.SlowConsumerError,
    nats.js.errors.NoStreamResponseError,
)
# Exceptions are followed this far through their causes (SQLAlchemy wraps psycopg's).
_MAX_CHAIN = 6


class TransientError(Exception):
    """Raise from a handler to say "try again later" (a peer is down, a provider is busy).

    ``retry_after`` (seconds) asks for at least that long before the next try; the retry is
    still capped by the consumer's ``EVENTS_RETRY_MAX_SECONDS``.
    """

    def __init__(self, *args: object, retry_after: float | None = None) -> None:
        super().__init__(*args)
        self.retry_after = retry_after


def is_transient(exc: BaseException) -> bool:
    """True when ``exc`` comes from an unavailable or busy dependency (see the module doc)."""
    return any(_transient_one(e) for e in _chain(exc))


def is_database_unavailable(exc: BaseException) -> bool:
    """True when ``exc`` says Postgres cannot be reached at all (not merely busy)."""
    return any(_database_unavailable_one(e) for e in _chain(exc))


def retry_after(exc: BaseException) -> float | None:
    """The delay a :class:`TransientError` asked for, if any."""
    for e in _chain(exc):
        if isinstance(e, TransientError) and e.retry_after is not None:
            return e.retry_after
    return None


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and what caused it. Implicit context is followed only out of database
    exceptions (SQLAlchemy raises "can't reconnect until rolled back" while handling a lost
    connection); an application error raised inside an ``except`` block stays what it is."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and len(seen) < _MAX_CHAIN and current not in seen:
        seen.append(current)
        if current.__cause__ is not None:
            current = current.__cause__
        elif isinstance(current, sa.exc.SQLAlchemyError | psycopg.Error):
            current = current.__context__
        else:
            current = None
    return seen


def _sqlstate(exc: BaseException) -> str | None:
    if isinstance(exc, sa.exc.DBAPIError):
        exc = exc.orig  # type: ignore[assignment]
    return getattr(exc, "sqlstate", None) if isinstance(exc, psycopg.Error) else None


def _database_unavailable_one(exc: BaseException) -> bool:
    if isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated:
        return True
    orig = exc.orig if isinstance(exc, sa.exc.DBAPIError) else exc
    if isinstance(orig, psycopg.InterfaceError):  # "the connection is closed"
        return True
    if isinstance(orig, psycopg.OperationalError):
        state = orig.sqlstate
        # No SQLSTATE: the failure happened on the wire (refused, reset, timed out).
        return state is None or state.startswith("08") or state in _UNAVAILABLE_STATES
    return False


def _transient_one(exc: BaseException) -> bool:
    if isinstance(exc, TransientError | DependencyUnavailable):
        return True
    if isinstance(exc, TimeoutError | ConnectionError | socket.gaierror):
        return True
    if _database_unavailable_one(exc):
        return True
    if isinstance(exc, sa.exc.TimeoutError):  # no pooled connection within the pool timeout
        return True
    state = _sqlstate(exc)
    if state is not None and (state in _RETRYABLE_STATES or state.startswith("53")):
        return True
    if isinstance(exc, nats.js.errors.APIError):
        # JetStream answered: only "unavailable" is worth waiting for; a 4xx will not change.
        return (exc.code or 0) >= 500
    return isinstance(exc, _NATS_UNAVAILABLE)
