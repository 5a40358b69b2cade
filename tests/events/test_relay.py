"""Outbox and relay against real Postgres and NATS: committed → published once, nothing lost."""

import asyncio
import uuid

import pytest
import sqlalchemy as sa
from nats.js import JetStreamContext
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from shared.context import bound
from shared.db import session_factory, transaction
from shared.events.catalogue import UnknownEvent
from shared.events.envelope import Envelope, stream_name
from shared.events.outbox import WrongProducer, record_event
from shared.events.relay import PublishFailed, Relay
from shared.events.streams import connect

from .conftest import TcpProxy, eventually


async def record_config_changes(engine: AsyncEngine, n: int, *, key: str = "k") -> list[uuid.UUID]:
    """Commit ``n`` identity events (platform.config.changed) in one transaction."""
    async with transaction(session_factory(engine)) as session:
        return [
            await record_event(
                session,
                service="identity",
                type="platform.config.changed",
                aggregate_type="config",
                aggregate_id=f"test/{key}{i}",
                data={
                    "category": "test",
                    "key": f"{key}{i}",
                    "value": str(i),
                    "value_type": "number",
                },
            )
            for i in range(n)
        ]


async def stream_messages(js: JetStreamContext, prefix: str) -> int:
    return (await js.stream_info(stream_name("IDENTITY", prefix))).state.messages


async def unpublished(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return await conn.scalar(sa.text("SELECT count(*) FROM events_pending"))


async def row_version(engine: AsyncEngine, event_id: uuid.UUID) -> str:
    """The transaction that wrote the event's row as it stands (any UPDATE changes it)."""
    async with engine.connect() as conn:
        return await conn.scalar(
            sa.text("SELECT xmin::text FROM events WHERE id = :id"), {"id": event_id}
        )


async def test_record_event_validates_against_the_catalogue_and_ownership(session: AsyncSession):
    config = {"category": "c", "key": "k", "value": "1", "value_type": "number"}
    with pytest.raises(UnknownEvent):
        await record_event(
            session, service="identity", type="identity.user.exploded",
            aggregate_type="user", aggregate_id="x", data={},
        )  # fmt: skip
    with pytest.raises(WrongProducer):
        await record_event(
            session, service="billing", type="platform.config.changed",
            aggregate_type="config", aggregate_id="c/k", data=config,
        )  # fmt: skip
    with bound("corr-1", "cause-1"):
        event_id = await record_event(
            session, service="identity", type="platform.config.changed",
            aggregate_type="config", aggregate_id="c/k", data=config,
        )  # fmt: skip
    row = (
        await session.execute(
            sa.text(
                "SELECT e.correlation_id, e.causation_id, p.service, p.seq = e.seq"
                " FROM events e LEFT JOIN events_pending p ON p.id = e.id WHERE e.id = :id"
            ),
            {"id": event_id},
        )
    ).one()
    assert tuple(row) == ("corr-1", "cause-1", "identity", True)  # pending, by its seq


async def test_every_event_inserted_is_pending_whoever_inserts_it(session: AsyncSession):
    # A multi-row INSERT of raw SQL (as the scraping work step writes its events) is listed too.
    inserted = await session.scalars(
        sa.text(
            "INSERT INTO events (service, type, aggregate_type, aggregate_id)"
            " VALUES ('scraping', 'a', 'job', '1'), ('scraping', 'b', 'job', '1'),"
            " ('billing', 'c', 'user', '2') RETURNING id"
        )
    )
    ids = set(inserted)
    pending = (
        await session.execute(
            sa.text(
                "SELECT p.id, p.service, p.seq, p.publish_attempts FROM events_pending p"
                " JOIN events e ON e.id = p.id AND e.service = p.service AND e.seq = p.seq"
            )
        )
    ).all()
    assert {r.id for r in pending} == ids and len(pending) == 3
    assert all(r.publish_attempts == 0 for r in pending)


async def test_a_committed_change_is_published_exactly_once_and_a_rolled_back_one_never(
    committed: AsyncEngine, js: JetStreamContext, nats_prefix: str
):
    [event_id] = await record_config_changes(committed, 1)
    written_by = await row_version(committed, event_id)
    with pytest.raises(RuntimeError):
        async with transaction(session_factory(committed)) as session:
            await record_event(
                session, service="identity", type="platform.config.changed",
                aggregate_type="config", aggregate_id="test/rolled-back",
                data={"category": "test", "key": "gone", "value": "x", "value_type": "string"},
            )  # fmt: skip
            raise RuntimeError("the business transaction fails")

    relay = Relay(committed, js, "identity", prefix=nats_prefix)
    assert await relay.drain() == 1
    assert await relay.drain() == 0
    assert await stream_messages(js, nats_prefix) == 1
    msg = await js.get_msg(stream_name("IDENTITY", nats_prefix), 1)
    envelope = Envelope.from_json(msg.data)
    assert envelope.id == event_id and msg.headers["Nats-Msg-Id"] == str(event_id)
    assert msg.subject == f"{nats_prefix}.platform.config.changed.v1"
    assert envelope.correlation_id == str(event_id)  # a new chain starts at its first event
    assert await unpublished(committed) == 0
    # Publishing never rewrites the event's row: the audit trail keeps it as it was written.
    assert await row_version(committed, event_id) == written_by
    # The envelope Postgres builds carries the row as it is, its instant with its offset.
    async with committed.connect() as conn:
        occurred_at = await conn.scalar(
            sa.text("SELECT occurred_at FROM events WHERE id = :id"), {"id": event_id}
        )
    assert envelope.occurred_at.tzinfo is not None and envelope.occurred_at == occurred_at
    assert (envelope.type, envelope.version, envelope.source) == (
        "platform.config.changed", 1, "identity",
    )  # fmt: skip
    assert (envelope.aggregate.type, envelope.aggregate.id, envelope.causation_id) == (
        "config", "test/k0", None,
    )  # fmt: skip
    assert envelope.data == {"category": "test", "key": "k0", "value": "0",
                             "value_type": "number", "previous_value": None}  # fmt: skip


async def test_other_services_rows_are_not_published_by_this_relay(
    committed: AsyncEngine, js: JetStreamContext, nats_prefix: str
):
    await record_config_changes(committed, 2)
    assert await Relay(committed, js, "billing", prefix=nats_prefix).drain() == 0
    assert await unpublished(committed) == 2


class KilledBeforeCommit(Relay):
    async def before_commit(self, published: int) -> None:
        raise RuntimeError("relay process killed between publish and commit")


async def test_relay_killed_between_publish_and_commit_republishes_without_duplicates(
    committed: AsyncEngine, js: JetStreamContext, nats_prefix: str
):
    await record_config_changes(committed, 5)
    with pytest.raises(RuntimeError, match="killed"):
        await KilledBeforeCommit(committed, js, "identity", prefix=nats_prefix).publish_batch()
    assert await stream_messages(js, nats_prefix) == 5
    assert await unpublished(committed) == 5  # the marks were rolled back with the crash

    assert await Relay(committed, js, "identity", prefix=nats_prefix).drain() == 5
    assert await stream_messages(js, nats_prefix) == 5  # Nats-Msg-Id dedupe dropped the re-sends
    assert await unpublished(committed) == 0


async def test_nats_down_while_events_are_written_loses_nothing(
    committed: AsyncEngine, nats_proxy: TcpProxy, js: JetStreamContext, nats_prefix: str, background
):
    proxied = await connect(nats_proxy.url, name="relay-behind-proxy")
    relay = Relay(
        committed, proxied.jetstream(), "identity", prefix=nats_prefix,
        poll_interval=0.1, ack_timeout=0.5, max_backoff=0.3,
    )  # fmt: skip
    try:
        run = background(relay.run())
        await nats_proxy.stop()  # NATS "stops"

        async def disconnected() -> bool:
            return not proxied.is_connected

        await eventually(disconnected)
        await record_config_changes(committed, 20)
        cycles = relay.cycles

        async def looped() -> bool:  # the relay kept going round while NATS was away …
            return relay.cycles >= cycles + 5

        await eventually(looped)
        assert await unpublished(committed) == 20
        async with committed.connect() as conn:  # … without claiming rows it could not send
            attempts = await conn.scalar(
                sa.text("SELECT max(publish_attempts) FROM events_pending")
            )
        assert attempts == 0

        await nats_proxy.start()  # NATS is back: the client reconnects, the relay catches up

        async def all_delivered() -> bool:
            return await unpublished(committed) == 0

        await eventually(all_delivered, within=15)
        assert await stream_messages(js, nats_prefix) == 20
        relay.stop()
        await run
    finally:
        await proxied.close()


async def test_two_relays_at_once_publish_every_event_exactly_once_and_in_order(
    committed: AsyncEngine, js: JetStreamContext, nats_prefix: str, background
):
    ids = await record_config_changes(committed, 300)
    relays = [
        Relay(committed, js, "identity", prefix=nats_prefix, batch_size=25, poll_interval=0.05)
        for _ in range(2)
    ]
    for relay in relays:
        background(relay.run())

    async def drained() -> bool:
        return await unpublished(committed) == 0

    await eventually(drained)
    for relay in relays:
        relay.stop()
    stream = stream_name("IDENTITY", nats_prefix)
    assert await stream_messages(js, nats_prefix) == 300
    published = [
        Envelope.from_json((await js.get_msg(stream, seq)).data).id for seq in (1, 150, 300)
    ]
    assert published == [ids[0], ids[149], ids[299]]


async def test_events_committed_while_the_relay_runs_are_each_published_once_in_order(
    committed: AsyncEngine, js: JetStreamContext, nats_prefix: str, background
):
    relay = Relay(committed, js, "identity", prefix=nats_prefix, batch_size=20, poll_interval=0.05)
    background(relay.run())

    async def writer(w: int) -> list[uuid.UUID]:  # one transaction after another
        ids: list[uuid.UUID] = []
        for t in range(25):
            ids += await record_config_changes(committed, 2, key=f"w{w}t{t}-")
        return ids

    written = await asyncio.gather(*(writer(w) for w in range(4)))

    async def drained() -> bool:
        return await unpublished(committed) == 0

    await eventually(drained, within=15)
    relay.stop()
    assert await stream_messages(js, nats_prefix) == 200
    stream = stream_name("IDENTITY", nats_prefix)
    position = {
        Envelope.from_json((await js.get_msg(stream, seq)).data).id: seq for seq in range(1, 201)
    }
    assert set(position) == {i for ids in written for i in ids}  # each once, none lost
    for ids in written:  # a writer's events reach the stream in the order it committed them
        assert [position[i] for i in ids] == sorted(position[i] for i in ids)
    async with committed.connect() as conn:
        assert await conn.scalar(sa.text("SELECT count(*) FROM events")) == 200


async def test_notify_wakes_the_relay_long_before_its_polling_interval(
    committed: AsyncEngine, js: JetStreamContext, nats_prefix: str, background
):
    relay = Relay(committed, js, "identity", prefix=nats_prefix, poll_interval=30)
    background(relay.run())

    async def asleep_and_listening() -> bool:  # polled, now waiting 30 s unless NOTIFY comes
        return relay.idle and relay.listening

    await eventually(asleep_and_listening)
    await record_config_changes(committed, 1)

    async def published() -> bool:
        return await unpublished(committed) == 0

    await eventually(published, within=3)
    relay.stop()


async def test_unacknowledged_batches_stay_unpublished_and_are_counted(
    committed: AsyncEngine, nc, nats_prefix: str
):
    # No streams exist under this prefix: JetStream never acks, like a server that lost them.
    await record_config_changes(committed, 3)
    relay = Relay(committed, nc.jetstream(), "identity", prefix=nats_prefix, ack_timeout=0.5)
    with pytest.raises(PublishFailed):
        await relay.publish_batch()
    async with committed.connect() as conn:
        rows = (
            await conn.execute(sa.text("SELECT publish_attempts, last_error FROM events_pending"))
        ).all()
    assert len(rows) == 3 and all(attempts == 1 and error for attempts, error in rows)
    assert await unpublished(committed) == 3


class NackOne:
    """Real JetStream, except that the publish of one event id is answered with an error."""

    def __init__(self, js: JetStreamContext, event_id: uuid.UUID) -> None:
        self.js, self.event_id, self._nc = js, str(event_id), js._nc

    async def publish_async(self, subject, payload, headers=None, stream=None):
        if headers and headers.get("Nats-Msg-Id") == self.event_id:
            failed = asyncio.get_running_loop().create_future()
            failed.set_exception(RuntimeError("nack"))
            return failed
        return await self.js.publish_async(subject, payload, headers=headers, stream=stream)


async def test_a_failed_row_mid_batch_marks_the_prefix_published_and_the_rest_failed(
    committed: AsyncEngine, js: JetStreamContext, nats_prefix: str
):
    # A batch of 500 is marked in chunks; the row that fails sits in its second chunk.
    ids = await record_config_changes(committed, 600)
    relay = Relay(committed, NackOne(js, ids[300]), "identity", prefix=nats_prefix, batch_size=500)
    with pytest.raises(PublishFailed, match="nack"):
        await relay.publish_batch()
    async with committed.connect() as conn:
        rows = (
            await conn.execute(
                sa.text(
                    "SELECT p.id IS NULL, coalesce(p.publish_attempts, 0), p.last_error IS NOT NULL"
                    " FROM events e LEFT JOIN events_pending p ON p.id = e.id ORDER BY e.seq"
                )
            )
        ).all()
    assert [tuple(r) for r in rows[:300]] == [(True, 0, False)] * 300  # published: not pending
    assert [tuple(r) for r in rows[300:500]] == [(False, 1, True)] * 200  # from the failed row on
    assert [tuple(r) for r in rows[500:]] == [(False, 0, False)] * 100  # not in the batch
    assert await Relay(committed, js, "identity", prefix=nats_prefix).drain() == 300
    assert await stream_messages(js, nats_prefix) == 600  # re-sends after the failure deduped
    assert await unpublished(committed) == 0
