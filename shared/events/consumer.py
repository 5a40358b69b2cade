"""Inbox consumers: durable JetStream pull consumers whose effects happen exactly once.

Each message is handled in ONE database transaction together with its inbox row
(``INSERT … ON CONFLICT (consumer, event_id) DO NOTHING``), and acked only after that commits.
Any number of worker processes may share a durable.

What happens when a handler fails is decided by :mod:`shared.events.failures`:
- transient (a dependency away or busy): nak'ed with exponential backoff capped at
  ``retry_max`` (``EVENTS_RETRY_MAX_SECONDS``) and retried for as long as it takes; never an
  attempt, never dead-lettered. If the database is what is away, the process's health gate
  closes and the consumer stops fetching until a probe gets an answer.
- permanent: counted in ``event_attempts`` (its own transaction, so it survives a restart) and
  retried with backoff; the ``max_attempts``-th failure goes to the dead-letter store.
- undecodable or invalid: dead-lettered at once.
JetStream's delivery limit is off (``max_deliver=-1``, see ``shared.events.durables``): Scout
alone decides when to give up.
"""

import asyncio
import contextlib
import logging
import traceback
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import sqlalchemy as sa
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from shared.context import bound
from shared.models.messaging import EventAttempt, InboxEntry

from .catalogue import CATALOGUE
from .dead_letters import record_dead_letter
from .durables import durable_config, ensure_durable, filter_subject
from .envelope import Envelope, stream_name, unprefixed
from .failures import TransientError, is_transient, retry_after
from .health import DatabaseHealth

log = logging.getLogger(__name__)

__all__ = ["Consumer", "Handler", "TransientError", "is_transient"]

Handler = Callable[[AsyncSession, Envelope], Awaitable[None]]
inbox: sa.Table = InboxEntry.__table__  # type: ignore[assignment]
attempts: sa.Table = EventAttempt.__table__  # type: ignore[assignment]
# Built once: it runs for every message.
_CLAIM_INBOX = (
    pg_insert(inbox)
    .values({c: sa.bindparam(c) for c in ("id", "service", "consumer", "event_id", "subject")})
    .on_conflict_do_nothing(index_elements=["consumer", "event_id"])
    .returning(inbox.c.id)
)
_COUNT_ATTEMPT = (
    pg_insert(attempts)
    .values({c: sa.bindparam(c) for c in ("service", "consumer", "event_id", "last_error")})
    .on_conflict_do_update(
        index_elements=["consumer", "event_id"],
        set_={
            "attempts": attempts.c.attempts + 1,
            "last_error": sa.bindparam("last_error"),
        },
    )
    .returning(attempts.c.attempts)
)
_CLEAR_ATTEMPTS = attempts.delete().where(
    attempts.c.consumer == sa.bindparam("consumer"), attempts.c.event_id == sa.bindparam("event_id")
)
# A message fetched just as the database went away waits this long before it is offered again.
_GATE_CLOSED_DELAY = 1.0


class Consumer:
    """Handles a set of subjects of ONE stream for one (service, name) durable consumer."""

    def __init__(
        self,
        engine: AsyncEngine,
        js: JetStreamContext,
        *,
        service: str,
        name: str,
        handlers: Mapping[str, Handler],
        prefix: str = "",
        max_attempts: int = 5,
        ack_wait: float = 30.0,
        retry_base: float = 1.0,
        retry_max: float = 30.0,
        batch: int = 10,
        fetch_timeout: float = 1.0,
        health: DatabaseHealth | None = None,
    ) -> None:
        unknown = [s for s in handlers if s not in CATALOGUE]
        if unknown:
            raise ValueError(f"not in the event catalogue: {unknown}")
        streams = {CATALOGUE[s].stream for s in handlers}
        if len(streams) != 1:
            raise ValueError(f"a consumer reads one stream; {name} spans {sorted(streams)}")
        self.engine, self.js, self.service, self.prefix = engine, js, service, prefix
        self.handlers = dict(handlers)
        self.durable = f"{service}_{name}".replace(".", "_")
        self.stream = stream_name(streams.pop(), prefix)
        self.max_attempts, self.ack_wait = max_attempts, ack_wait
        self.retry_base, self.retry_max = retry_base, retry_max
        self.batch, self.fetch_timeout = batch, fetch_timeout
        self.health = health or DatabaseHealth(engine, name=self.durable)
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        self._filter = filter_subject(sorted(handlers), prefix)
        self._sub: JetStreamContext.PullSubscription | None = None
        self._stopping = asyncio.Event()

    def config(self, **overrides: Any) -> ConsumerConfig:
        return durable_config(self.durable, self._filter, self.ack_wait, **overrides)

    async def ensure(self) -> None:
        """Create or update the durable (idempotent: every worker process calls it at start)."""
        await ensure_durable(self.js, self.stream, self.config)
        self._sub = await self.js.pull_subscribe_bind(durable=self.durable, stream=self.stream)

    async def run(self) -> None:
        """Fetch and handle messages until :meth:`stop`; outages of NATS or Postgres are waited
        out without fetching (nothing is delivered only to fail)."""
        failures = 0
        while not self._stopping.is_set():
            if not await self.health.wait(self._stopping):
                break
            if not _connected(self.js):
                await self._pause(0.2)
                continue
            try:
                msgs = await self.fetch()
                failures = 0
            except TimeoutError:
                continue
            except Exception as exc:  # NATS trouble (or a stream being recreated)
                failures += 1
                delay = min(self.retry_max, 0.1 * 2**failures)
                log.warning("events.consumer.fetch_failed", extra={"error": repr(exc)})
                await self._pause(delay)
                continue
            await asyncio.gather(*(self.process(msg) for msg in msgs))

    def stop(self) -> None:
        self._stopping.set()

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)

    async def fetch(self, n: int | None = None, wait: float | None = None) -> list[Msg]:
        """Pull up to ``n`` messages (raises TimeoutError when none arrive within ``wait`` s)."""
        if self._sub is None:
            await self.ensure()
        assert self._sub is not None
        return await self._sub.fetch(n or self.batch, timeout=wait or self.fetch_timeout)

    async def process(self, msg: Msg) -> None:
        """Handle one delivery: apply once then ack; retry transient failures without counting
        them; count permanent ones and dead-letter at ``max_attempts``."""
        deliveries = msg.metadata.num_delivered
        subject = unprefixed(msg.subject, self.prefix)
        handler = self.handlers.get(subject)
        if handler is None:  # in the filter's range but not ours (NATS 2.9 single filter)
            await msg.ack()
            return
        envelope: Envelope | None = None
        try:
            envelope = Envelope.from_json(msg.data)
            if envelope.subject != subject:
                raise ValueError(f"envelope says {envelope.subject}, subject is {subject}")
            envelope.payload  # noqa: B018 — validate now: a bad payload is permanent
        except Exception as exc:
            await self._dead_letter(msg, envelope, f"invalid message: {exc}", deliveries)
            return
        if not self.health.healthy:  # fetched just before the gate closed: not an attempt
            await self._settle(msg.nak(delay=_GATE_CLOSED_DELAY))
            return
        keep_alive = asyncio.create_task(self._keep_alive(msg))
        try:
            with bound(envelope.correlation_id, str(envelope.id)):
                await self._apply(envelope, handler, retried=deliveries > 1)
        except Exception as exc:
            if is_transient(exc):
                await self._retry_later(msg, envelope, exc, deliveries)
            else:
                await self._failed(msg, envelope, exc, deliveries)
            return
        finally:
            keep_alive.cancel()
        # After commit. If this ack is lost the message comes back and the inbox skips it.
        await self._settle(msg.ack())

    async def _apply(self, envelope: Envelope, handler: Handler, *, retried: bool) -> bool:
        """The inbox row and the handler's effects in one transaction; False if already applied."""
        async with self._sessions() as session, session.begin():
            # Race: the same event delivered twice at once (redelivery after ack_wait, a relay
            # re-publish, a replay). The second INSERT waits on the unique index until the
            # first commits — then it inserts nothing and we skip — or rolls back, then we apply.
            claimed = await session.execute(
                _CLAIM_INBOX,
                {
                    "id": uuid.uuid4(),
                    "service": self.service,
                    "consumer": self.durable,
                    "event_id": str(envelope.id),
                    "subject": envelope.subject,
                },
            )
            if claimed.first() is None:
                return False
            await handler(session, envelope)
            if retried:  # an earlier delivery may have counted a failed attempt: forget it
                await session.execute(
                    _CLEAR_ATTEMPTS, {"consumer": self.durable, "event_id": str(envelope.id)}
                )
        return True

    def _backoff(self, n: int) -> float:
        return min(self.retry_max, self.retry_base * 2 ** max(0, n - 1))

    async def _retry_later(
        self, msg: Msg, envelope: Envelope, exc: BaseException, deliveries: int
    ) -> None:
        """A dependency is away: offer the message again later, for as long as it takes."""
        gate_closed = self.health.report(exc)
        delay = self._backoff(deliveries)
        if (asked := retry_after(exc)) is not None:
            delay = min(self.retry_max, max(delay, asked))
        log.warning(
            "events.consumer.retry",
            extra={
                "durable": self.durable,
                "event_id": str(envelope.id),
                "error": repr(exc)[:500],
                "delay_s": delay,
                "database_down": gate_closed,
            },
        )
        await self._settle(msg.nak(delay=delay))

    async def _failed(
        self, msg: Msg, envelope: Envelope, exc: BaseException, deliveries: int
    ) -> None:
        """A permanent failure: count it durably; dead-letter it at ``max_attempts``."""
        error = "".join(traceback.format_exception(exc, limit=8))
        try:
            async with self.engine.begin() as conn:
                attempt = await conn.scalar(
                    _COUNT_ATTEMPT,
                    {
                        "service": self.service,
                        "consumer": self.durable,
                        "event_id": str(envelope.id),
                        "last_error": error[:10_000],
                    },
                )
        except Exception as write_error:  # cannot even count it: the database is away
            await self._retry_later(msg, envelope, write_error, deliveries)
            return
        if attempt >= self.max_attempts:
            await self._dead_letter(msg, envelope, error, deliveries, attempts=attempt)
            return
        delay = self._backoff(attempt)
        log.warning(
            "events.consumer.attempt_failed",
            extra={
                "durable": self.durable,
                "event_id": str(envelope.id),
                "attempt": attempt,
                "error": repr(exc)[:500],
                "delay_s": delay,
            },
        )
        await self._settle(msg.nak(delay=delay))

    async def _dead_letter(
        self,
        msg: Msg,
        envelope: Envelope | None,
        error: str,
        deliveries: int,
        *,
        attempts: int = 1,
    ) -> None:
        try:
            await record_dead_letter(
                self.engine,
                service=self.service,
                consumer=self.durable,
                stream=self.stream,
                subject=msg.subject,
                event_id=str(envelope.id) if envelope else (msg.headers or {}).get("Nats-Msg-Id"),
                payload=msg.data,
                headers=dict(msg.headers or {}),
                error=error,
                deliveries=attempts,
            )
        except Exception as exc:  # the store is down: keep the message, try again later
            self.health.report(exc)
            delay = self._backoff(deliveries)
            log.warning(
                "events.consumer.dead_letter_failed",
                extra={"durable": self.durable, "error": repr(exc)[:500], "delay_s": delay},
            )
            await self._settle(msg.nak(delay=delay))
            return
        log.error(
            "events.consumer.dead_lettered",
            extra={
                "durable": self.durable,
                "deliveries": deliveries,
                "attempts": attempts,
                "error": error[:500],
            },
        )
        await self._settle(msg.term())

    async def _keep_alive(self, msg: Msg) -> None:
        """Tell JetStream a long handler is still working, so it is not redelivered meanwhile."""
        while True:
            await asyncio.sleep(self.ack_wait / 3)
            with contextlib.suppress(Exception):
                await msg.in_progress()

    @staticmethod
    async def _settle(action: Awaitable[None]) -> None:
        try:
            await action
        except Exception as exc:  # connection gone: the message is redelivered, inbox dedupes
            log.warning("events.consumer.settle_failed", extra={"error": repr(exc)})


def _connected(js: JetStreamContext) -> bool:
    """Whether the NATS connection behind ``js`` is up (no request is sent while it is not)."""
    nc = getattr(js, "_nc", None)
    return nc is None or bool(nc.is_connected)
