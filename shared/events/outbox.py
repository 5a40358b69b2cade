"""``record_event``: write an event to the outbox in the caller's transaction.

The row and the state change commit or roll back together, so a committed change always has
its event and a rolled-back one never does. A trigger on ``events`` lists the row in
``events_pending`` in the same statement; the relay publishes it after commit and removes it
from that list once JetStream has acknowledged it.
"""

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from shared.context import current_causation_id, current_correlation_id
from shared.models.enums import Service
from shared.models.messaging import Event, PendingEvent

from .catalogue import Payload, spec_for

# Relays LISTEN here; the payload is the service whose outbox has new rows.
NOTIFY_CHANNEL = "scout_outbox"

events_table: sa.Table = Event.__table__  # type: ignore[assignment]
# An event's row here (inserted with it by a trigger) is what makes it unpublished.
pending_table: sa.Table = PendingEvent.__table__  # type: ignore[assignment]
_t = events_table.c
_COLUMNS = ("id", "service", "type", "version", "aggregate_type", "aggregate_id", "user_id",
            "correlation_id", "causation_id", "data")  # fmt: skip
# Built once (record_event is hot): the row, and in the same round trip a NOTIFY that Postgres
# delivers to LISTENers only if and when the transaction commits (never on rollback), folding
# identical notifications of one transaction into one.
_RECORD = sa.select(sa.func.pg_notify(NOTIFY_CHANNEL, sa.bindparam("service"))).select_from(
    events_table.insert()
    .values({name: sa.bindparam(name, type_=_t[name].type) for name in _COLUMNS})
    .returning(_t.id)
    .cte("inserted")
)


class WrongProducer(ValueError):
    """A service tried to record an event another service owns (each event type has one producer)."""


async def record_event(
    session: AsyncSession | AsyncConnection,
    *,
    service: Service | str,
    type: str,
    aggregate_type: str,
    aggregate_id: str | uuid.UUID,
    data: Payload | dict[str, Any],
    version: int = 1,
    user_id: uuid.UUID | None = None,
    correlation_id: str | None = None,
    causation_id: str | None = None,
) -> uuid.UUID:
    """Validate ``data`` against the catalogue and insert the outbox row; never commits.

    Correlation/causation ids default to the ones bound in :mod:`shared.context` (the request or
    the event being handled); an event that starts a new chain is its own correlation id.
    """
    spec = spec_for(type, version)
    if spec.producer != service:
        raise WrongProducer(f"{spec.subject} is produced by {spec.producer}, not {service}")
    payload = spec.validate(data)
    event_id = uuid.uuid4()
    correlation_id = correlation_id or current_correlation_id() or str(event_id)
    causation_id = causation_id or current_causation_id()
    await session.execute(
        _RECORD,
        {
            "id": event_id,
            "service": str(service),
            "type": type,
            "version": version,
            "aggregate_type": aggregate_type,
            "aggregate_id": str(aggregate_id),
            "user_id": user_id,
            "correlation_id": correlation_id,
            "causation_id": causation_id,
            "data": payload,
        },
    )
    return event_id


async def record_user_purged(
    session: AsyncSession, *, service: Service | str, user_id: uuid.UUID, clerk_user_id: str
) -> uuid.UUID:
    """``<service>.user.purged``: ``service`` has removed everything it holds of a deleted user.

    Recorded in the transaction of the purge itself, so the acknowledgement exists exactly when
    the purge committed; identity deletes the ``users`` row once every purging service has sent
    its own.
    """
    return await record_event(
        session,
        service=service,
        type=f"{service}.user.purged",
        aggregate_type="user",
        aggregate_id=user_id,
        user_id=user_id,
        data={"user_id": user_id, "clerk_user_id": clerk_user_id},
    )
