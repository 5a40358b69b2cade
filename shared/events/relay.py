"""The outbox relay: publishes a service's committed ``events`` rows to JetStream, in ``seq`` order.

What is unpublished is listed apart from the events: the ``trg_events_pending`` trigger gives
every inserted event a row in ``events_pending`` (its ``id``, ``service`` and ``seq``) in the
same statement, so the row is committed, or rolled back, with the event. The relay claims a
batch of its service's pending rows in ``seq`` order (leader lock, ``FOR UPDATE SKIP LOCKED``),
reads the events by primary key, publishes them with ``publish_async`` and, as the acks of each
chunk come in, deletes the chunk's pending rows: only the acknowledged prefix of a batch is
deleted, the rest keeps its pending row with ``publish_attempts`` and ``last_error`` counted.
An ``events`` row is written once and never updated (publishing adds no row version and no
index entry to the table); an event is published exactly when it has no pending row. No
publish time is kept per event.

Delivery is at least once from here (Nats-Msg-Id = event id lets JetStream drop a re-publish
inside its duplicate window) and exactly once in effect at the consumer (the inbox drops the rest).
Outages are waited out, never given up on: while NATS is disconnected the relay does not touch
the database, while the database is unreachable it waits on the process's health gate, and
other failures are retried with backoff capped at ``max_backoff`` (``EVENTS_RETRY_MAX_SECONDS``).
Published events are pruned by the retention jobs (``shared.retention``), not here.
"""

import asyncio
import contextlib
import logging

import psycopg
import sqlalchemy as sa
from nats.js import JetStreamContext
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared.db import DriverQuery, libpq_url

from .catalogue import CATALOGUE
from .envelope import prefixed, stream_name
from .health import DatabaseHealth
from .outbox import NOTIFY_CHANNEL, pending_table

log = logging.getLogger(__name__)

# First key of the per-service advisory lock (the second is hashtext(service)).
_LOCK_NAMESPACE = 0x5C0_0B0C
_p = pending_table.c
# The claim and the marks run on the driver connection (``DriverQuery``): one statement each
# per batch, the ids as one array parameter rather than an IN list of 500.
#
# The claim takes the service's leader lock in the same statement (an InitPlan, evaluated once:
# a relay that is not the leader claims nothing). It locks the service's first pending rows in
# ``seq`` order and reads each event by its primary key. Each row comes ready to send: the
# event id as text (the Nats-Msg-Id), its unprefixed subject, and the envelope JSON Postgres
# builds, with ``data`` embedded as the JSON it holds, so no row is parsed or serialised in
# Python. ``occurred_at`` is written as ISO 8601 with its UTC offset. The envelope is built
# outside the locking subquery, for the claimed rows only, and the batch size is written into
# the SQL: a ``LIMIT`` parameter would let the cached generic plan sort every pending row to
# keep the first ones, a claim whose cost grows with the backlog.
_CLAIM_SQL = """
SELECT e.id::text, e.type || '.v' || e.version,
       json_build_object(
         'id', e.id, 'type', e.type, 'version', e.version, 'source', e.service,
         'occurred_at', e.occurred_at,
         'aggregate', json_build_object('type', e.aggregate_type, 'id', e.aggregate_id),
         'correlation_id', e.correlation_id, 'causation_id', e.causation_id, 'data', e.data
       )::text
FROM (
  SELECT p.id, p.seq
  FROM events_pending AS p
  WHERE (SELECT pg_try_advisory_xact_lock({namespace}, hashtext(:service)))
    AND p.service = :service
  ORDER BY p.seq
  LIMIT {batch}
  FOR UPDATE OF p SKIP LOCKED
) AS c
JOIN events AS e ON e.id = c.id
ORDER BY c.seq
"""


def _claim(batch_size: int) -> DriverQuery:
    sql = _CLAIM_SQL.format(namespace=_LOCK_NAMESPACE, batch=int(batch_size))
    return DriverQuery(sa.text(sql).bindparams(sa.bindparam("service", type_=sa.Text)))


# Rows per mark: a batch is marked in chunks while its later chunks are sent.
_MARK_CHUNK = 250
_IDS = sa.bindparam("ids", type_=postgresql.ARRAY(sa.Text))
_ANY_ID = _p.id == sa.func.any(sa.cast(_IDS, postgresql.ARRAY(sa.Uuid)))
# Published: the pending row goes (the event's own row is never touched).
_MARK_PUBLISHED = DriverQuery(pending_table.delete().where(_ANY_ID))
_MARK_FAILED = DriverQuery(
    pending_table.update()
    .where(_ANY_ID)
    .values(
        publish_attempts=_p.publish_attempts + 1,
        last_error=sa.bindparam("error", type_=sa.Text),
    )
)


_ASYNC_COMMIT = DriverQuery(sa.text("SET LOCAL synchronous_commit = off"))


class PublishFailed(RuntimeError):
    """Some rows of a batch were not acknowledged by JetStream; they stay unpublished."""


class Relay:
    """Publishes one service's outbox; run one per worker process, any number per service."""

    def __init__(
        self,
        engine: AsyncEngine,
        js: JetStreamContext,
        service: str,
        *,
        prefix: str = "",
        batch_size: int = 500,
        poll_interval: float = 1.0,
        ack_timeout: float = 5.0,
        max_backoff: float = 30.0,
        listen: bool = True,
        health: DatabaseHealth | None = None,
    ) -> None:
        self.engine, self.js, self.service, self.prefix = engine, js, service, prefix
        self.batch_size, self.poll_interval, self.ack_timeout = (
            batch_size,
            poll_interval,
            ack_timeout,
        )
        self.max_backoff, self.listen = max_backoff, listen
        self.health = health or DatabaseHealth(engine, name=f"{service}-relay")
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        # What the loop is doing, for tests and debugging: passes made, whether it is idle
        # (waiting for NOTIFY or the poll), whether LISTEN is active.
        self.cycles, self.idle, self.listening = 0, False, False
        self._subjects = {
            subject: (prefixed(subject, prefix), stream_name(spec.stream, prefix))
            for subject, spec in CATALOGUE.items()
        }
        self._claim = _claim(batch_size)

    # one cycle --------------------------------------------------------------------------------

    async def publish_batch(self) -> int:
        """Claim, publish and mark one batch in one transaction; returns how many were published."""
        async with self.engine.connect() as conn, conn.begin():
            # The claim takes the service's leader lock: relays of one service take turns (the
            # others are hot standbys), which keeps the stream in seq order and stops two relays
            # racing to publish the same rows. The row locks would keep the claim safe even
            # without it.
            rows = await self._claim.all(conn, {"service": self.service})
            if not rows:
                return 0
            # The commit does not wait for its WAL flush: a mark (the deletes of the pending
            # rows) lost to a database crash only means its rows are published again, which
            # JetStream and the consumers' inboxes drop as duplicates (the same as a relay
            # killed before its commit).
            await _ASYNC_COMMIT.run(conn, {})
            acked, error = await self._publish(conn, rows)
            # A crash from here to commit leaves published rows unmarked: the next relay
            # re-publishes them with the same Nats-Msg-Id and JetStream drops the duplicates.
            await self.before_commit(acked)
        if error:
            raise PublishFailed(error)
        return acked

    async def before_commit(self, published: int) -> None:
        """Extension point between publish and commit (metrics; crash injection in tests)."""

    async def _publish(self, conn: AsyncConnection, rows: list[tuple]) -> tuple[int, str | None]:
        """Publish the rows without waiting for acks, a chunk at a time, while a marker task
        marks each chunk published once its acks are in: the DELETE of the chunk's pending rows
        runs in Postgres as the next chunks are sent. Only the acknowledged prefix is marked
        published: a later row is never published "before" an earlier one that failed (it is
        re-sent after it; JetStream drops it if it got there); the rest is marked failed.
        Returns (acked prefix length, error)."""
        chunks: asyncio.Queue[tuple[list[str], list[asyncio.Future]] | None] = asyncio.Queue()
        marker = asyncio.create_task(self._mark_acked(conn, chunks))
        error: str | None = None
        try:
            publish, subjects, prefix = self.js.publish_async, self._subjects, self.prefix
            for start in range(0, len(rows), _MARK_CHUNK):
                ids: list[str] = []
                futures: list[asyncio.Future] = []
                try:
                    for event_id, base, body in rows[start : start + _MARK_CHUNK]:
                        subject, stream = subjects.get(base) or (prefixed(base, prefix), None)
                        futures.append(
                            await publish(subject, body.encode(),
                                          headers={"Nats-Msg-Id": event_id}, stream=stream)
                        )  # fmt: skip
                        ids.append(event_id)
                finally:
                    chunks.put_nowait((ids, futures))
        except Exception as exc:  # connection closed, outbound buffer full …
            error = f"publish: {exc!r}"
        finally:
            chunks.put_nowait(None)
        try:
            acked, ack_error = await marker
        finally:
            marker.cancel()
        error = error or ack_error
        if error and acked < len(rows):
            failed = [row[0] for row in rows[acked:]]
            await _MARK_FAILED.run(conn, {"ids": failed, "error": error[:2000]})
        return acked, error

    async def _mark_acked(
        self, conn: AsyncConnection, chunks: asyncio.Queue
    ) -> tuple[int, str | None]:
        """Mark chunks published in order, each once its acks are in, up to the first row
        without one (a chunk waits at most ``ack_timeout``; none once a row has failed)."""
        acked, error = 0, None
        while (chunk := await chunks.get()) is not None:
            ids, futures = chunk
            if futures:
                await asyncio.wait(futures, timeout=0 if error else self.ack_timeout)
            ok = 0
            for future in futures:
                if not future.done():
                    future.cancel()
                    error = error or f"no ack within {self.ack_timeout}s"
                elif future.cancelled() or future.exception() is not None:
                    error = error or f"ack: {future.exception()!r}"
                elif error is None:
                    ok += 1
            if ok:
                await _MARK_PUBLISHED.run(conn, {"ids": ids[:ok]})
                acked += ok
        return acked, error

    async def drain(self) -> int:
        """Publish until the outbox of this service is empty (or another relay holds it)."""
        total = 0
        while n := await self.publish_batch():
            total += n
        return total

    # the loop ---------------------------------------------------------------------------------

    async def run(self) -> None:
        """Publish until :meth:`stop`: woken by NOTIFY, polling as a fallback, backing off on errors."""
        listener = asyncio.create_task(self._listen()) if self.listen else None
        failures = 0
        try:
            while not self._stopping.is_set():
                self.cycles += 1
                if not await self.health.wait(self._stopping):
                    break
                if not self._nats_connected():  # nothing could be published: leave rows be
                    await self._sleep(0.2, wakeable=False)
                    continue
                # Cleared before the claim, so a NOTIFY arriving during the batch is not lost.
                self._wake.clear()
                try:
                    published = await self.publish_batch()
                    failures = 0
                except Exception as exc:  # rows stay unpublished; they go out on a later try
                    if self.health.report(exc):
                        continue  # the database is away: wait on the gate, not on a timer
                    failures += 1
                    delay = min(self.max_backoff, 0.05 * 2**failures)
                    log.warning(
                        "events.relay.retry",
                        extra={"service": self.service, "error": repr(exc), "delay_s": delay},
                    )
                    await self._sleep(delay, wakeable=False)
                    continue
                if not published:
                    self.idle = True
                    await self._sleep(self.poll_interval, wakeable=True)
                    self.idle = False
        finally:
            if listener:
                listener.cancel()
                await asyncio.gather(listener, return_exceptions=True)

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def _sleep(self, seconds: float, *, wakeable: bool) -> None:
        waiter = self._wake if wakeable else self._stopping
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(waiter.wait(), timeout=seconds)

    def _nats_connected(self) -> bool:
        nc = getattr(self.js, "_nc", None)
        return nc is None or bool(nc.is_connected)

    async def _listen(self) -> None:
        dsn = libpq_url(self.engine.url.render_as_string(hide_password=False))
        while not self._stopping.is_set():
            await self.health.wait(self._stopping)
            try:
                async with await psycopg.AsyncConnection.connect(
                    dsn, autocommit=True, connect_timeout=5
                ) as conn:
                    await conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    self._wake.set()  # rows committed while nobody listened
                    self.listening = True
                    async for note in conn.notifies():
                        if note.payload == self.service:
                            self._wake.set()
            except Exception as exc:  # polling covers the gap until LISTEN is back
                self.listening = False
                self.health.report(exc)
                log.warning("events.relay.listen_failed", extra={"error": repr(exc)})
                await self._sleep(1.0, wakeable=False)
