"""Inbox consumers: durable JetStream pull consumers whose effects happen exactly once.

Each message is handled in ONE database transaction together with its inbox row
(``INSERT … ON CONFLICT (consumer, event_id) DO NOTHING``), and acked only after that commits.
Transient failures are nak'ed with exponential backoff; anything else, or a message out of
deliveries, goes to the dead-letter store. Any number of worker processes may share a durable.
"""

import asyncio
import contextlib
import logging
import traceback
import uuid
from collections.abc import Awaitable, Callable, Mapping

import nats.errors
import psycopg
import sqlalchemy as sa
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import BadRequestError
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from shared.context import bound
from shared.errors import DependencyUnavailable
from shared.models.messaging import InboxEntry

from .catalogue import CATALOGUE
from .dead_letters import record_dead_letter
from .envelope import Envelope, prefixed, stream_name, unprefixed

log = logging.getLogger(__name__)

Handler = Callable[[AsyncSession, Envelope], Awaitable[None]]
inbox: sa.Table = InboxEntry.__table__  # type: ignore[assignment]
# Built once: it runs for every message.
_CLAIM_INBOX = (
    pg_insert(inbox)
    .values({c: sa.bindparam(c) for c in ("id", "service", "consumer", "event_id", "subject")})
    .on_conflict_do_nothing(index_elements=["consumer", "event_id"])
    .returning(inbox.c.id)
)


class TransientError(Exception):
    """Raise from a handler to say "try again later" (a peer is down, a lock timed out)."""


def is_transient(exc: BaseException) -> bool:
    """Errors worth a retry: our own TransientError, lost connections, timeouts, lock conflicts."""
    if isinstance(exc, TransientError | DependencyUnavailable | TimeoutError | ConnectionError):
        return True
    if isinstance(exc, sa.exc.TimeoutError | sa.exc.InterfaceError):  # pool exhausted, conn gone
        return True
    if isinstance(exc, sa.exc.DBAPIError):
        # OperationalError covers lost connections, deadlocks, serialization failures, timeouts.
        return exc.connection_invalidated or isinstance(exc.orig, psycopg.OperationalError)
    return isinstance(exc, psycopg.OperationalError)


def _filter_subject(subjects: list[str], prefix: str) -> str | None:
    """One filter for a set of subjects (NATS 2.9 has no multi-filter): their common tokens."""
    if len(subjects) == 1:
        return prefixed(subjects[0], prefix)
    tokens = [s.split(".") for s in subjects]
    common = []
    for group in zip(*tokens, strict=False):
        if len(set(group)) != 1:
            break
        common.append(group[0])
    return prefixed(".".join([*common, ">"]), prefix) if common else None


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
        max_deliver: int = 5,
        ack_wait: float = 30.0,
        retry_base: float = 1.0,
        retry_max: float = 60.0,
        batch: int = 10,
        fetch_timeout: float = 1.0,
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
        self.max_deliver, self.ack_wait = max_deliver, ack_wait
        self.retry_base, self.retry_max = retry_base, retry_max
        self.batch, self.fetch_timeout = batch, fetch_timeout
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        self._filter = _filter_subject(sorted(handlers), prefix)
        self._sub: JetStreamContext.PullSubscription | None = None
        self._stopping = asyncio.Event()

    async def ensure(self) -> None:
        """Create or update the durable (idempotent: every worker process calls it at start)."""
        config = ConsumerConfig(
            name=self.durable,
            durable_name=self.durable,
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self.ack_wait,
            # Two spare deliveries: if a worker dies during the last attempt, the next
            # delivery still finds the message exhausted and dead-letters it instead of
            # JetStream silently giving up on it.
            max_deliver=self.max_deliver + 2,
            filter_subject=self._filter,
        )
        try:
            await self.js.add_consumer(self.stream, config)
        except BadRequestError as exc:  # a change the server will not apply in place: say so
            log.warning(
                "events.consumer.config_differs", extra={"durable": self.durable, "error": str(exc)}
            )
        self._sub = await self.js.pull_subscribe_bind(durable=self.durable, stream=self.stream)

    async def run(self) -> None:
        """Fetch and handle messages until :meth:`stop`; NATS outages are waited out."""
        failures = 0
        while not self._stopping.is_set():
            try:
                msgs = await self.fetch()
                failures = 0
            except TimeoutError:
                continue
            except nats.errors.Error as exc:
                failures += 1
                log.warning("events.consumer.fetch_failed", extra={"error": repr(exc)})
                await asyncio.sleep(min(self.retry_max, 0.1 * 2**failures))
                continue
            await asyncio.gather(*(self.process(msg) for msg in msgs))

    def stop(self) -> None:
        self._stopping.set()

    async def fetch(self, n: int | None = None, wait: float | None = None) -> list[Msg]:
        """Pull up to ``n`` messages (raises TimeoutError when none arrive within ``wait`` s)."""
        if self._sub is None:
            await self.ensure()
        assert self._sub is not None
        return await self._sub.fetch(n or self.batch, timeout=wait or self.fetch_timeout)

    async def process(self, msg: Msg) -> None:
        """Handle one delivery: apply once, then ack; nak transient failures; dead-letter the rest."""
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
        if deliveries > self.max_deliver:
            await self._dead_letter(msg, envelope, "deliveries exhausted", deliveries)
            return
        keep_alive = asyncio.create_task(self._keep_alive(msg))
        try:
            with bound(envelope.correlation_id, str(envelope.id)):
                await self._apply(envelope, handler)
        except Exception as exc:
            if is_transient(exc) and deliveries < self.max_deliver:
                delay = min(self.retry_max, self.retry_base * 2 ** (deliveries - 1))
                log.warning(
                    "events.consumer.retry",
                    extra={
                        "durable": self.durable,
                        "event_id": str(envelope.id),
                        "error": repr(exc),
                        "delay_s": delay,
                    },
                )
                await self._settle(msg.nak(delay=delay))
            else:
                error = "".join(traceback.format_exception(exc, limit=8))
                await self._dead_letter(msg, envelope, error, deliveries)
            return
        finally:
            keep_alive.cancel()
        # After commit. If this ack is lost the message comes back and the inbox skips it.
        await self._settle(msg.ack())

    async def _apply(self, envelope: Envelope, handler: Handler) -> bool:
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
        return True

    async def _dead_letter(
        self, msg: Msg, envelope: Envelope | None, error: str, deliveries: int
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
                deliveries=deliveries,
            )
        except Exception as exc:  # the store is down: keep the message, try again later
            log.warning("events.consumer.dead_letter_failed", extra={"error": repr(exc)})
            await self._settle(msg.nak(delay=self.retry_max))
            return
        log.error(
            "events.consumer.dead_lettered", extra={"durable": self.durable, "error": error[:500]}
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
