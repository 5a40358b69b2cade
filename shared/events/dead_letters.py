"""The dead-letter store: messages a consumer gave up on, listed and replayed by operators.

A replay re-publishes the original bytes under a new ``Nats-Msg-Id`` (so JetStream's duplicate
window does not swallow it); every consumer's inbox still guarantees the effect happens once.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from nats.js import JetStreamContext
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.models.enums import DeadLetterStatus
from shared.models.messaging import DeadLetter, EventAttempt

dead_letters: sa.Table = DeadLetter.__table__  # type: ignore[assignment]
_d = dead_letters.c
event_attempts: sa.Table = EventAttempt.__table__  # type: ignore[assignment]


@dataclass(frozen=True)
class DeadLetterView:
    id: uuid.UUID
    created_at: datetime
    service: str
    consumer: str
    stream: str | None
    subject: str
    event_id: str | None
    deliveries: int
    status: str
    error: str
    payload: str
    headers: dict[str, Any]
    replayed_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


async def record_dead_letter(
    engine: AsyncEngine,
    *,
    service: str,
    consumer: str,
    stream: str | None,
    subject: str,
    event_id: str | None,
    payload: bytes,
    headers: dict[str, Any] | None,
    error: str,
    deliveries: int,
) -> uuid.UUID | None:
    """Store a message given up on; ``None`` when it is already stored and pending.

    The consumer's attempt count for the event goes in the same transaction: a replay of the
    dead letter starts from zero attempts.
    """
    async with engine.begin() as conn:
        if event_id is not None:
            # Race: a redelivery of the same message (the term was lost) failing at the same
            # time on another worker. The lock serialises the two so only one row is written.
            await conn.execute(
                sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(consumer + event_id)))
            )
            await conn.execute(
                event_attempts.delete().where(
                    event_attempts.c.consumer == consumer, event_attempts.c.event_id == event_id
                )
            )
            exists = await conn.scalar(
                sa.select(_d.id).where(
                    _d.consumer == consumer,
                    _d.event_id == event_id,
                    _d.status == DeadLetterStatus.pending,
                )
            )
            if exists:
                return None
        return await conn.scalar(
            dead_letters.insert()
            .values(
                service=service,
                consumer=consumer,
                stream=stream,
                subject=subject,
                event_id=event_id,
                payload=payload.decode("utf-8", errors="replace"),
                headers=headers or {},
                error=error[:10_000],
                deliveries=deliveries,
            )
            .returning(_d.id)
        )


async def list_dead_letters(
    engine: AsyncEngine,
    *,
    status: str | None = DeadLetterStatus.pending,
    service: str | None = None,
    limit: int = 100,
) -> list[DeadLetterView]:
    """Dead letters, oldest first (the order they should be looked at and replayed)."""
    query = sa.select(*(getattr(_d, f) for f in DeadLetterView.__dataclass_fields__))
    if status:
        query = query.where(_d.status == status)
    if service:
        query = query.where(_d.service == service)
    async with engine.connect() as conn:
        rows = await conn.execute(query.order_by(_d.created_at, _d.id).limit(limit))
    return [DeadLetterView(**row._mapping) for row in rows]


async def replay_dead_letter(
    engine: AsyncEngine, js: JetStreamContext, dead_letter_id: uuid.UUID
) -> bool:
    """Re-publish one pending dead letter and mark it ``replayed``; False if not pending."""
    async with engine.begin() as conn:
        # FOR UPDATE: two operators replaying at once publish it once (the second sees no row).
        row = (
            await conn.execute(
                sa.select(_d.id, _d.subject, _d.payload, _d.headers, _d.event_id)
                .where(_d.id == dead_letter_id, _d.status == DeadLetterStatus.pending)
                .with_for_update(skip_locked=True)
            )
        ).first()
        if row is None:
            return False
        headers = {str(k): str(v) for k, v in (row.headers or {}).items()}
        headers["Nats-Msg-Id"] = f"{row.event_id or row.id}.replay.{row.id}"
        headers["Scout-Replay-Of"] = str(row.id)
        # Publish inside the transaction: if the ack never comes, the row stays pending.
        await js.publish(row.subject, row.payload.encode(), headers=headers)
        await conn.execute(
            dead_letters.update()
            .where(_d.id == row.id)
            .values(status=DeadLetterStatus.replayed, replayed_at=sa.func.now())
        )
    return True


async def replay_dead_letters(
    engine: AsyncEngine, js: JetStreamContext, *, service: str | None = None
) -> int:
    """Replay every pending dead letter (of one service, if given); returns how many."""
    replayed = 0
    while batch := await list_dead_letters(engine, service=service, limit=100):
        progressed = False
        for letter in batch:
            if await replay_dead_letter(engine, js, letter.id):
                replayed += 1
                progressed = True
        if not progressed:  # the rest are being replayed by someone else right now
            break
    return replayed
