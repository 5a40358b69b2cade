"""JetStream streams derived from the catalogue, provisioned idempotently at start-up.

One stream per producing service (``IDENTITY`` also holds ``platform.*``) plus the
``SCRAPING_WORK`` work queue. A stream listens on ``<domain>.<aggregate>.>`` for each catalogued
type, never on ``billing.>``: that would capture the ``billing.usage.*`` request/reply subjects
and answer them with a PubAck instead of letting billing reply.
"""

import contextlib
import logging
from collections import defaultdict
from dataclasses import dataclass

from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.api import RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError, NotFoundError

from .catalogue import CATALOGUE, EventSpec
from .envelope import prefixed, stream_name

log = logging.getLogger(__name__)

# Nats-Msg-Id dedupe horizon: a relay that dies between publish and commit re-publishes within it.
DUPLICATE_WINDOW_S = 120.0
# How long an event stream keeps a fact for late consumers (NATS_STREAM_MAX_AGE_DAYS). Every
# consumer's inbox keeps an applied event id at least as long (RETENTION_INBOX_DAYS), so any
# event the stream can still deliver is recognised as applied; settings refuse the opposite.
EVENT_MAX_AGE_S = 7 * 24 * 3600.0


@dataclass(frozen=True)
class StreamSpec:
    name: str  # unprefixed
    subjects: tuple[str, ...]  # unprefixed filters
    work_queue: bool = False

    def config(
        self, prefix: str, replicas: int = 1, max_age: float = EVENT_MAX_AGE_S
    ) -> StreamConfig:
        # Facts are kept ``max_age`` seconds for late consumers; work items stay until a worker
        # acks them (a work item's effect is in the inbox before its ack, and a lost ack is
        # redelivered within ack_wait, far inside any inbox retention).
        age = 0 if self.work_queue else max_age
        return StreamConfig(
            name=stream_name(self.name, prefix),
            subjects=[prefixed(s, prefix) for s in self.subjects],
            retention=RetentionPolicy.WORK_QUEUE if self.work_queue else RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            num_replicas=replicas,
            # JetStream refuses a duplicate window longer than the stream's max age.
            duplicate_window=min(DUPLICATE_WINDOW_S, age) if age else DUPLICATE_WINDOW_S,
            max_age=age,
        )


def _streams(specs: list[EventSpec]) -> dict[str, StreamSpec]:
    filters: dict[str, set[str]] = defaultdict(set)
    for spec in specs:
        domain, aggregate = spec.type.split(".")[:2]
        filters[spec.stream].add(f"{domain}.{aggregate}.>")
    return {
        name: StreamSpec(name, tuple(sorted(subjects)), work_queue=name.endswith("_WORK"))
        for name, subjects in filters.items()
    }


STREAMS: dict[str, StreamSpec] = _streams(list(CATALOGUE.values()))


def _differs(current: StreamConfig, wanted: StreamConfig) -> bool:
    return (
        set(current.subjects or []) != set(wanted.subjects or [])
        or current.duplicate_window != wanted.duplicate_window
        or (current.max_age or 0) != (wanted.max_age or 0)
        or current.num_replicas != wanted.num_replicas
    )


async def ensure_streams(
    js: JetStreamContext, prefix: str, *, replicas: int = 1, max_age: float = EVENT_MAX_AGE_S
) -> list[str]:
    """Create or update every Scout stream under ``prefix``; safe to run in every worker at once.

    An existing stream whose subjects, duplicate window, max age or replicas differ is updated
    in place (a shorter max age drops the events older than it).
    """
    names = []
    for spec in STREAMS.values():
        wanted = spec.config(prefix, replicas, max_age)
        try:
            current = (await js.stream_info(wanted.name)).config
        except NotFoundError:
            try:
                await js.add_stream(wanted)
                names.append(wanted.name)
                continue
            except BadRequestError:
                # Race: another worker created it between our lookup and our create.
                current = (await js.stream_info(wanted.name)).config
        if _differs(current, wanted):
            log.info("events.stream.updated", extra={"stream": wanted.name})
            await js.update_stream(wanted)
        names.append(wanted.name)
    return names


async def delete_streams(js: JetStreamContext, prefix: str) -> None:
    """Remove every stream under ``prefix`` (tests and benchmarks clean up after themselves)."""
    for spec in STREAMS.values():
        with contextlib.suppress(NotFoundError):
            await js.delete_stream(stream_name(spec.name, prefix))


async def connect(url: str, *, name: str) -> NATS:
    """A NATS connection that reconnects forever: outages are waited out, never fatal."""

    async def on_error(exc: Exception) -> None:
        log.warning("nats.error", extra={"error": repr(exc)})

    nc = NATS()

    async def on_disconnect() -> None:
        if not (nc.is_closed or nc.is_draining):  # a close we asked for is not news
            log.warning("nats.disconnected")

    async def on_reconnect() -> None:
        log.info("nats.reconnected")

    await nc.connect(
        servers=[url],
        name=name,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,
        connect_timeout=2,
        error_cb=on_error,
        disconnected_cb=on_disconnect,
        reconnected_cb=on_reconnect,
    )
    return nc
