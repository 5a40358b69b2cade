"""Durable pull consumers: one configuration for every Scout durable, applied at start-up.

Every durable has JetStream's delivery limit off (``max_deliver=-1``): a transient failure may
outlast any count, and permanent failures are counted by Scout (``event_attempts``), which
dead-letters instead of dropping. Durables created by earlier versions are updated in place;
a change the server refuses to apply in place (an ack policy, say) replaces the durable from
its ack floor, so no unacknowledged message is lost (the inbox makes redeliveries no-ops).
"""

import contextlib
import logging
from collections.abc import Callable
from typing import Any

from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import APIError, NotFoundError

from .envelope import prefixed

log = logging.getLogger(__name__)

# JetStream's "consumer create error" (e.g. "ack policy can not be updated"), "consumer name
# already in use" and "consumer already exists": the durable exists with settings that cannot
# change in place. Anything else (unavailable, timeouts) is not a reason to replace a durable.
_REFUSED_UPDATE_CODES = frozenset({10012, 10013, 10148})


def filter_subject(subjects: list[str], prefix: str) -> str | None:
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


def durable_config(
    durable: str, filter_subject: str | None, ack_wait: float, **overrides: Any
) -> ConsumerConfig:
    fields: dict[str, Any] = dict(
        name=durable,
        durable_name=durable,
        deliver_policy=DeliverPolicy.ALL,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=ack_wait,
        max_deliver=-1,  # unlimited: Scout decides when to give up (see the module doc)
        filter_subject=filter_subject,
    )
    return ConsumerConfig(**(fields | overrides))


async def ensure_durable(
    js: JetStreamContext, stream: str, config: Callable[..., ConsumerConfig]
) -> None:
    """Create the durable ``config()`` describes, or bring an existing one to it.

    An existing durable keeps where it started (its deliver policy only mattered when it was
    created); every other setting is updated in place, or the durable is replaced.
    """
    durable = config().durable_name
    try:
        current = (await js.consumer_info(stream, durable)).config
        wanted = config(
            deliver_policy=current.deliver_policy,
            opt_start_seq=current.opt_start_seq,
            opt_start_time=current.opt_start_time,
        )
    except NotFoundError:
        wanted = config()
    try:
        await js.add_consumer(stream, wanted)
    except APIError as exc:
        if exc.err_code not in _REFUSED_UPDATE_CODES:
            raise
        await _recreate(js, stream, config, exc)


async def _recreate(
    js: JetStreamContext, stream: str, config: Callable[..., ConsumerConfig], refused: APIError
) -> None:
    """Replace a durable whose settings cannot change in place, losing nothing: the new one
    starts right after the old one's ack floor, so every message not yet acknowledged is
    delivered again."""
    durable = config().durable_name
    try:
        old = await js.consumer_info(stream, durable)
    except NotFoundError:  # another worker is replacing it right now
        old = None
    start = (old.ack_floor.stream_seq if old and old.ack_floor else 0) + 1
    log.warning(
        "events.consumer.recreated",
        extra={"durable": durable, "error": str(refused), "from_seq": start},
    )
    if old is not None:
        with contextlib.suppress(NotFoundError):
            await js.delete_consumer(stream, durable)
    try:
        await js.add_consumer(
            stream, config(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=start)
        )
    except APIError as exc:
        if exc.err_code not in _REFUSED_UPDATE_CODES:
            raise
        # Race: another worker recreated it first (from the same floor or an older one).
        await js.consumer_info(stream, durable)
