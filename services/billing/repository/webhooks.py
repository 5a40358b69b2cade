"""Every SQL statement about Stripe deliveries (``webhook_events`` rows of source ``stripe``):
the claim with its processing lease, and the outcome."""

import uuid
from datetime import datetime

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

# Insert the event as ``processing`` with a lease; an existing row is re-claimed only when it
# failed or its lease ran out (a crashed attempt). One statement, so concurrent duplicates
# cannot both win.
_CLAIM = sa.text(
    "INSERT INTO webhook_events (id, event_id, source, event_type, status, event_timestamp,"
    " locked_until, payload, metadata)"
    " VALUES (:id, :event_id, 'stripe', :type, 'processing', :ts,"
    " now() + make_interval(secs => :lease), CAST(:payload AS jsonb), CAST(:meta AS jsonb))"
    " ON CONFLICT (source, event_id) DO UPDATE SET status = 'processing',"
    " locked_until = now() + make_interval(secs => :lease),"
    " retry_count = webhook_events.retry_count + 1, error_message = NULL"
    " WHERE webhook_events.status = 'failed' OR (webhook_events.status = 'processing'"
    " AND (webhook_events.locked_until IS NULL OR webhook_events.locked_until < now()))"
    " RETURNING id, locked_until"
)

_STATUS = sa.text("SELECT status FROM webhook_events WHERE source = 'stripe' AND event_id = :e")

_STILL_OURS = sa.text(
    "SELECT 1 FROM webhook_events WHERE id = :id AND locked_until = :lease"
    " AND status = 'processing' FOR UPDATE"
)

_COMPLETE = sa.text(
    "UPDATE webhook_events SET status = 'completed', processed_at = now(),"
    " locked_until = NULL, metadata = metadata || CAST(:m AS jsonb)"
    " WHERE id = :id"
)

_FAIL = sa.text(
    "UPDATE webhook_events SET status = 'failed', error_message = :err,"
    " locked_until = NULL WHERE id = :id AND locked_until = :lease"
)


def _json(value: object) -> str:
    return orjson.dumps(value).decode()


class WebhookRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def claim(
        self,
        event_id: str,
        event_type: str,
        at: datetime | None,
        lease_seconds: int,
        payload: dict,
        metadata: dict,
    ) -> tuple[uuid.UUID, datetime] | None:
        """``(row id, lease end)`` when this attempt may process the event, else None."""
        claimed = (
            await self.session.execute(
                _CLAIM,
                {
                    "id": uuid.uuid4(),
                    "event_id": event_id,
                    "type": event_type[:100],
                    "ts": at,
                    "lease": lease_seconds,
                    "payload": _json(payload),
                    "meta": _json(metadata),
                },
            )
        ).first()
        return None if claimed is None else (claimed[0], claimed[1])

    async def status(self, event_id: str) -> str | None:
        return await self.session.scalar(_STATUS, {"e": event_id})

    async def still_ours(self, row_id: uuid.UUID, lease: datetime) -> bool:
        """Lock the row if our lease is still on it (another attempt may have taken over)."""
        return bool(await self.session.scalar(_STILL_OURS, {"id": row_id, "lease": lease}))

    async def complete(self, row_id: uuid.UUID, outcome: str) -> None:
        await self.session.execute(_COMPLETE, {"id": row_id, "m": _json({"outcome": outcome})})

    async def fail(self, row_id: uuid.UUID, lease: datetime, error: str) -> None:
        params = {"id": row_id, "lease": lease, "err": error[:2000]}
        await self.session.execute(_FAIL, params)
