"""Durables created by earlier versions (JetStream's delivery limit of 7) are brought to the
unlimited configuration at start-up, in place where the server allows it, and otherwise
recreated from their ack floor, so no unacknowledged message is lost either way."""

from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from shared.events.envelope import Envelope

from .test_consumer import config_envelope, consumer, publish


async def noop(session: AsyncSession, envelope: Envelope) -> None:
    return None


def old_config(c, **overrides) -> ConsumerConfig:
    """What the previous version created: at most 7 deliveries, then JetStream drops it."""
    fields = dict(
        name=c.durable, durable_name=c.durable, deliver_policy=DeliverPolicy.ALL,
        ack_policy=AckPolicy.EXPLICIT, ack_wait=30, max_deliver=7, filter_subject=c._filter,
    ) | overrides  # fmt: skip
    return ConsumerConfig(**fields)


async def publish_envelopes(js: JetStreamContext, prefix: str, n: int) -> list[str]:
    ids = []
    for _ in range(n):
        envelope = config_envelope()
        await publish(js, prefix, envelope.to_json(), msg_id=str(envelope.id))
        ids.append(str(envelope.id))
    return ids


async def test_an_old_durable_is_updated_in_place_keeping_its_position(
    committed: AsyncEngine, js: JetStreamContext, nats_prefix: str
):
    c = consumer(committed, js, nats_prefix, noop)
    await js.add_consumer(c.stream, old_config(c))
    await publish_envelopes(js, nats_prefix, 3)
    old = await js.pull_subscribe_bind(durable=c.durable, stream=c.stream)
    [first] = await old.fetch(1, timeout=5)
    await first.ack_sync()

    await c.ensure()  # a new worker version starts

    info = await js.consumer_info(c.stream, c.durable)
    assert info.config.max_deliver == -1
    assert info.delivered.stream_seq == 1 and info.num_pending == 2  # not restarted from zero
    assert len(await c.fetch(5, wait=5)) == 2  # the two not yet delivered


async def test_a_durable_the_server_will_not_update_is_recreated_from_its_ack_floor(
    committed: AsyncEngine, js: JetStreamContext, nats_prefix: str
):
    c = consumer(committed, js, nats_prefix, noop)
    # An ack policy cannot change in place: JetStream refuses the update.
    await js.add_consumer(c.stream, old_config(c, ack_policy=AckPolicy.ALL))
    ids = await publish_envelopes(js, nats_prefix, 5)
    old = await js.pull_subscribe_bind(durable=c.durable, stream=c.stream)
    _first, second = await old.fetch(2, timeout=5)
    await second.ack_sync()  # ack policy "all": acknowledges everything up to it
    [in_flight] = await old.fetch(1, timeout=5)  # taken by a worker that then stopped, unacked
    assert str(Envelope.from_json(in_flight.data).id) == ids[2]

    await c.ensure()

    info = await js.consumer_info(c.stream, c.durable)
    assert info.config.max_deliver == -1 and info.config.ack_policy == AckPolicy.EXPLICIT
    delivered: list[str] = []
    while len(delivered) < 3:
        delivered += [str(Envelope.from_json(m.data).id) for m in await c.fetch(5, wait=5)]
    assert delivered == ids[2:]  # the unacked one again and the rest; the acked ones not

    again = consumer(committed, js, nats_prefix, noop)
    await again.ensure()  # the next start-up updates the recreated durable in place
    assert (await js.consumer_info(c.stream, c.durable)).delivered.stream_seq == 5
