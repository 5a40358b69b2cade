"""The database health gate: while Postgres is unreachable, consumers, the relay and the
dead-letter path wait instead of burning deliveries, and nothing is lost when it returns.

The parts reach Postgres through a TCP proxy (``proxied_engine``); the test itself reads and
writes the database directly, as the rest of the system would during the outage.
"""

import asyncio
from contextlib import AsyncExitStack

import sqlalchemy as sa
from nats.js import JetStreamContext
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from shared.events.consumer import Consumer
from shared.events.dead_letters import list_dead_letters
from shared.events.envelope import Envelope
from shared.events.health import DatabaseHealth
from shared.events.relay import Relay

from .conftest import Counter, TcpProxy, eventually
from .test_consumer import SUBJECT, config_envelope, count, publish, settled
from .test_relay import record_config_changes, stream_messages, unpublished


def gate(engine: AsyncEngine) -> DatabaseHealth:
    # Probes every 0.2 s at most, so a test sees several while the database is away.
    return DatabaseHealth(engine, name="test", probe_max=0.2, probe_timeout=1.0)


async def test_a_consumer_stops_fetching_while_its_database_is_away_and_resumes_after(
    committed: AsyncEngine,
    proxied_engine: AsyncEngine,
    pg_proxy: TcpProxy,
    counter: Counter,
    js: JetStreamContext,
    nats_prefix: str,
    background,
):
    async def handler(session: AsyncSession, envelope: Envelope) -> None:
        await counter.increment(session)

    health = gate(proxied_engine)
    c = Consumer(
        proxied_engine, js, service="billing", name="gate-test", handlers={SUBJECT: handler},
        prefix=nats_prefix, retry_base=0.05, retry_max=0.2, fetch_timeout=0.2, max_attempts=2,
        health=health,
    )  # fmt: skip
    background(c.run())
    await publish(js, nats_prefix, config_envelope().to_json(), msg_id="before")

    async def applied(n: int) -> bool:
        return await counter.value() == n

    await eventually(lambda: applied(1))

    await pg_proxy.stop()
    for i in range(5):
        await publish(js, nats_prefix, config_envelope().to_json(), msg_id=f"during-{i}")
    await eventually(lambda: _is_down(health))  # the first message to fail closed the gate
    delivered = (await js.consumer_info(c.stream, c.durable)).delivered.consumer_seq
    probes = health.probes
    await eventually(lambda: _probed(health, probes + 5))  # a while passes, probing only
    info = await js.consumer_info(c.stream, c.durable)
    assert info.delivered.consumer_seq == delivered  # nothing was fetched meanwhile
    # Far more than max_attempts deliveries' worth of time passed: none of it counted.
    assert await count(committed, "event_attempts") == 0

    await pg_proxy.start()
    await eventually(lambda: applied(6), within=15)
    await eventually(lambda: settled(js, c))
    c.stop()
    assert await list_dead_letters(committed) == []
    assert await count(committed, "inbox") == 6


async def test_a_dead_letter_that_cannot_be_written_stays_in_the_stream_until_it_can(
    committed: AsyncEngine,
    proxied_engine: AsyncEngine,
    pg_proxy: TcpProxy,
    js: JetStreamContext,
    nats_prefix: str,
    background,
):
    async def handler(session: AsyncSession, envelope: Envelope) -> None:
        raise AssertionError("an invalid message never reaches the handler")

    health = gate(proxied_engine)
    c = Consumer(
        proxied_engine, js, service="billing", name="dl-test", handlers={SUBJECT: handler},
        prefix=nats_prefix, retry_base=0.05, retry_max=0.2, fetch_timeout=0.2, health=health,
    )  # fmt: skip
    await pg_proxy.stop()
    await publish(js, nats_prefix, b"not json", msg_id="garbage")
    background(c.run())
    await eventually(lambda: _is_down(health))  # its dead-letter write failed: gate closed
    info = await js.consumer_info(c.stream, c.durable)
    assert info.num_ack_pending + info.num_pending == 1  # naked, not dropped

    await pg_proxy.start()

    async def dead_lettered() -> bool:
        return len(await list_dead_letters(committed)) == 1

    await eventually(dead_lettered, within=15)
    await eventually(lambda: settled(js, c))
    c.stop()
    [letter] = await list_dead_letters(committed)
    assert letter.event_id == "garbage" and "invalid message" in letter.error


async def test_the_relay_waits_on_the_gate_and_publishes_everything_after(
    committed: AsyncEngine,
    proxied_engine: AsyncEngine,
    pg_proxy: TcpProxy,
    js: JetStreamContext,
    nats_prefix: str,
    background,
):
    health = gate(proxied_engine)
    relay = Relay(
        proxied_engine, js, "identity", prefix=nats_prefix, poll_interval=0.1, health=health
    )
    background(relay.run())
    await record_config_changes(committed, 3, key="before")

    async def drained() -> bool:
        return await unpublished(committed) == 0

    await eventually(drained)

    await pg_proxy.stop()
    await record_config_changes(committed, 20, key="during")  # other processes keep writing
    await eventually(lambda: _is_down(health))  # its LISTEN connection or a claim failed

    async def parked() -> bool:  # out of its idle sleep and waiting on the gate
        return not relay.idle and health.probes >= 2

    await eventually(parked)
    cycles, probes = relay.cycles, health.probes
    await eventually(lambda: _probed(health, probes + 5))
    assert relay.cycles == cycles  # no claim, no error loop while the database is away
    assert await unpublished(committed) == 20

    await pg_proxy.start()
    await eventually(drained, within=15)
    assert await stream_messages(js, nats_prefix) == 23
    relay.stop()


async def test_a_probe_that_cannot_connect_closes_the_gate_and_a_busy_pool_does_not(
    proxied_engine: AsyncEngine, pg_proxy: TcpProxy
):
    health = gate(proxied_engine)
    async with AsyncExitStack() as held:
        for _ in range(4):  # every pooled connection busy: the next checkout would wait
            conn = await held.enter_async_context(proxied_engine.connect())
            await conn.execute(sa.text("SELECT 1"))
        assert await health.probe() is True and health.healthy  # it uses a connection of its own
    await pg_proxy.stop()
    assert await health.probe() is False
    assert not health.healthy and health.outages == 1
    await pg_proxy.start()
    await eventually(lambda: _is_up(health), within=10)
    assert await health.probe() is True


async def test_a_gate_closed_again_as_it_opens_keeps_its_parts_waiting_not_stopping(
    proxied_engine: AsyncEngine, pg_proxy: TcpProxy
):
    """Right after an outage a statement on a connection from before it can close the gate
    again before the parts woken by its opening have run. They wait on: ``wait`` answers
    False only to a stop, and a part that took it for one would leave its loop for good."""
    health = gate(proxied_engine)
    stop = asyncio.Event()
    await pg_proxy.stop()
    assert await health.probe() is False
    waiting = asyncio.create_task(health.wait(stop))
    await pg_proxy.start()
    # The probe opens the gate; polling every turn of the loop sees it before the waiter runs.
    while not health.healthy:  # noqa: ASYNC110 (an Event would wake this after the waiter)
        await asyncio.sleep(0)
    health.mark_down("a statement on a connection from before the outage")
    assert health.outages == 2 and not waiting.done()
    assert await asyncio.wait_for(waiting, 10) is True  # opened again by the next probe
    assert health.healthy and not stop.is_set()

    await pg_proxy.stop()
    assert await health.probe() is False
    waiting = asyncio.create_task(health.wait(stop))
    stop.set()
    assert await asyncio.wait_for(waiting, 10) is False  # a stop ends the wait at once


async def _is_down(health: DatabaseHealth) -> bool:
    return not health.healthy


async def _is_up(health: DatabaseHealth) -> bool:
    return health.healthy


async def _probed(health: DatabaseHealth, n: int) -> bool:
    return health.probes >= n
