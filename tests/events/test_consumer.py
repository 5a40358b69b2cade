"""Inbox consumers: effects exactly once, transient failures retried without limit, permanent
ones counted durably and dead-lettered, dead letters replayed, durables updated in place."""

import asyncio
import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from nats.js import JetStreamContext
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from shared.events.consumer import Consumer, TransientError
from shared.events.dead_letters import list_dead_letters, replay_dead_letters
from shared.events.envelope import Envelope, prefixed
from shared.events.outbox import record_event
from shared.events.relay import Relay

from .conftest import Counter, eventually
from .test_relay import record_config_changes

SUBJECT = "platform.config.changed.v1"


def config_envelope(**overrides) -> Envelope:
    fields = {
        "id": uuid.uuid4(),
        "type": "platform.config.changed",
        "version": 1,
        "source": "identity",
        "occurred_at": datetime.now(UTC),
        "aggregate": {"type": "config", "id": "test/k"},
        "correlation_id": "corr-test",
        "data": {"category": "test", "key": "k", "value": "1", "value_type": "number"},
    } | overrides
    return Envelope(**fields)


async def publish(js: JetStreamContext, prefix: str, body: bytes, msg_id: str) -> None:
    await js.publish(prefixed(SUBJECT, prefix), body, headers={"Nats-Msg-Id": msg_id})


def consumer(engine: AsyncEngine, js: JetStreamContext, prefix: str, handler, **kw) -> Consumer:
    options = {"retry_base": 0.05, "retry_max": 0.2, "fetch_timeout": 0.2, "max_attempts": 4} | kw
    return Consumer(
        engine, js, service="billing", name="config-test",
        handlers={SUBJECT: handler}, prefix=prefix, **options,
    )  # fmt: skip


async def count(engine: AsyncEngine, table: str) -> int:
    async with engine.connect() as conn:
        return await conn.scalar(sa.text(f"SELECT count(*) FROM {table}"))


async def lock_waiters(engine: AsyncEngine, *, at_least: int) -> bool:
    """Whether ``at_least`` sessions of this database wait on a row lock (a twin's INSERT)."""
    async with engine.connect() as conn:
        waiting = await conn.scalar(
            sa.text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event_type = 'Lock'"
            )
        )
    return waiting >= at_least


async def attempts_of(engine: AsyncEngine, event_id) -> int | None:
    async with engine.connect() as conn:
        return await conn.scalar(
            sa.text("SELECT attempts FROM event_attempts WHERE event_id = :e"),
            {"e": str(event_id)},
        )


async def settled(js: JetStreamContext, c: Consumer) -> bool:
    """Nothing left for the durable: every message acked or terminated, none waiting."""
    info = await js.consumer_info(c.stream, c.durable)
    return info.num_pending == 0 and info.num_ack_pending == 0


async def test_outbox_to_consumer_applies_each_event_once_even_when_republished(
    committed: AsyncEngine, counter: Counter, js: JetStreamContext, nats_prefix: str, background
):
    ids = await record_config_changes(committed, 3)
    await Relay(committed, js, "identity", prefix=nats_prefix).drain()

    async def handler(session: AsyncSession, envelope: Envelope) -> None:
        await counter.increment(session)

    c = consumer(committed, js, nats_prefix, handler)
    await c.ensure()  # the durable exists before anyone asks about it
    background(c.run())
    # The same event again under a new Nats-Msg-Id (a replay, or a re-publish after the window).
    again = config_envelope(id=ids[0])
    await publish(js, nats_prefix, again.to_json(), msg_id=f"{ids[0]}-again")

    async def applied() -> bool:
        info = await js.consumer_info(c.stream, c.durable)
        return info.num_pending == 0 and info.num_ack_pending == 0

    await eventually(applied)
    c.stop()
    assert await counter.value() == 3
    assert await count(committed, "inbox") == 3


async def test_the_same_message_delivered_twice_concurrently_takes_effect_once(
    committed: AsyncEngine, counter: Counter, js: JetStreamContext, nats_prefix: str
):
    body = config_envelope().to_json()
    await publish(js, nats_prefix, body, msg_id="first")
    await publish(js, nats_prefix, body, msg_id="second")  # a twin JetStream cannot dedupe
    entered = 0

    async def slow_handler(session: AsyncSession, envelope: Envelope) -> None:
        nonlocal entered
        entered += 1
        await counter.increment(session)
        # Hold the transaction open until the twin's inbox INSERT waits on this one's row.
        await eventually(lambda: lock_waiters(committed, at_least=1))

    # Two workers sharing one durable, each holding one of the twins at the same time.
    workers = [consumer(committed, js, nats_prefix, slow_handler, batch=1) for _ in range(2)]
    first, second = [(await w.fetch())[0] for w in workers]
    await asyncio.gather(workers[0].process(first), workers[1].process(second))

    assert (await counter.value(), entered) == (1, 1)
    assert await count(committed, "inbox") == 1
    info = await js.consumer_info(workers[0].stream, workers[0].durable)
    assert (info.num_pending, info.num_ack_pending) == (0, 0)  # both acked, none redelivered


async def test_a_transient_error_is_retried_with_backoff_and_then_succeeds(
    committed: AsyncEngine, counter: Counter, js: JetStreamContext, nats_prefix: str, background
):
    await publish(js, nats_prefix, config_envelope().to_json(), msg_id="m1")
    calls = 0

    async def flaky(session: AsyncSession, envelope: Envelope) -> None:
        nonlocal calls
        calls += 1
        await counter.increment(session)  # rolled back with the failing attempts
        if calls < 3:
            raise TransientError("billing provider timed out")

    c = consumer(committed, js, nats_prefix, flaky)
    background(c.run())

    async def done() -> bool:
        return await counter.value() == 1

    await eventually(done)
    c.stop()
    assert calls == 3
    assert await list_dead_letters(committed) == []


async def test_a_transient_failure_longer_than_every_attempt_is_retried_until_it_succeeds(
    committed: AsyncEngine, counter: Counter, js: JetStreamContext, nats_prefix: str, background
):
    """Four attempts is the limit for permanent failures; a dependency that stays away for
    three times as many deliveries is waited out, never counted, never dead-lettered."""
    envelope = config_envelope()
    await publish(js, nats_prefix, envelope.to_json(), msg_id=str(envelope.id))
    calls = 0

    async def down_for_a_while(session: AsyncSession, envelope: Envelope) -> None:
        nonlocal calls
        calls += 1
        if calls <= 12:
            raise TransientError("still down")
        await counter.increment(session)

    c = consumer(committed, js, nats_prefix, down_for_a_while)
    background(c.run())

    async def applied() -> bool:
        return await counter.value() == 1

    await eventually(applied, within=20)
    await eventually(lambda: settled(js, c))
    c.stop()
    assert calls == 13
    assert await list_dead_letters(committed) == []
    assert await attempts_of(committed, envelope.id) is None  # transient failures never count


async def test_permanent_failures_are_counted_durably_across_a_restart(
    committed: AsyncEngine, js: JetStreamContext, nats_prefix: str
):
    """Two attempts fail on one consumer, which then "restarts" (a new process, no memory):
    the count goes on from two, and the fourth attempt in all dead-letters the event."""
    envelope = config_envelope()
    await publish(js, nats_prefix, envelope.to_json(), msg_id=str(envelope.id))
    calls = 0

    async def broken(session: AsyncSession, envelope: Envelope) -> None:
        nonlocal calls
        calls += 1
        raise ValueError("a bug in the handler")

    first = consumer(committed, js, nats_prefix, broken)
    for expected in (1, 2):
        [msg] = await first.fetch(1, wait=5)
        await first.process(msg)
        assert await attempts_of(committed, envelope.id) == expected
    restarted = consumer(committed, js, nats_prefix, broken)
    [msg] = await restarted.fetch(1, wait=5)
    await restarted.process(msg)
    assert await attempts_of(committed, envelope.id) == 3
    assert await list_dead_letters(committed) == []
    [msg] = await restarted.fetch(1, wait=5)
    await restarted.process(msg)
    [letter] = await list_dead_letters(committed)
    assert letter.event_id == str(envelope.id) and letter.deliveries == 4 and calls == 4
    assert await attempts_of(committed, envelope.id) is None  # a replay starts from zero
    await eventually(lambda: settled(js, restarted))


async def test_a_success_after_failed_attempts_forgets_them(
    committed: AsyncEngine, counter: Counter, js: JetStreamContext, nats_prefix: str, background
):
    envelope = config_envelope()
    await publish(js, nats_prefix, envelope.to_json(), msg_id=str(envelope.id))
    calls = 0

    async def fails_twice(session: AsyncSession, envelope: Envelope) -> None:
        nonlocal calls
        calls += 1
        if calls <= 2:
            raise ValueError("not yet")
        await counter.increment(session)

    c = consumer(committed, js, nats_prefix, fails_twice)
    background(c.run())

    async def applied() -> bool:
        return await counter.value() == 1

    await eventually(applied)
    c.stop()
    assert calls == 3 and await list_dead_letters(committed) == []
    assert await attempts_of(committed, envelope.id) is None


async def test_a_poison_message_is_dead_lettered_then_replayed_and_applied_once(
    committed: AsyncEngine, counter: Counter, js: JetStreamContext, nats_prefix: str, background
):
    envelope = config_envelope()
    await publish(js, nats_prefix, envelope.to_json(), msg_id=str(envelope.id))
    poisoned = True
    calls = 0

    async def handler(session: AsyncSession, envelope: Envelope) -> None:
        nonlocal calls
        calls += 1
        await counter.increment(session)
        if poisoned:
            raise ValueError("a bug in the handler")

    c = consumer(committed, js, nats_prefix, handler)
    background(c.run())

    async def dead() -> bool:
        return len(await list_dead_letters(committed)) == 1

    await eventually(dead)
    await eventually(lambda: settled(js, c))  # terminated: nothing left to redeliver
    assert calls == 4 and await counter.value() == 0 and await count(committed, "inbox") == 0
    [letter] = await list_dead_letters(committed)
    assert letter.event_id == str(envelope.id) and "ValueError" in letter.error
    assert letter.subject == prefixed(SUBJECT, nats_prefix) and letter.deliveries == 4

    poisoned = False  # the fix is deployed
    assert await replay_dead_letters(committed, js) == 1
    assert await replay_dead_letters(committed, js) == 0

    async def applied() -> bool:
        return await counter.value() == 1

    await eventually(applied)
    c.stop()
    assert await list_dead_letters(committed) == []
    [replayed] = await list_dead_letters(committed, status="replayed")
    assert replayed.replayed_at is not None


async def test_an_invalid_message_goes_to_dead_letters_without_reaching_the_handler(
    committed: AsyncEngine, js: JetStreamContext, nats_prefix: str, background
):
    await publish(js, nats_prefix, b"not json", msg_id="garbage")
    bad_payload = config_envelope(data={"category": "test"})  # key, value … missing
    await publish(js, nats_prefix, bad_payload.to_json(), msg_id="bad-payload")
    calls = 0

    async def handler(session: AsyncSession, envelope: Envelope) -> None:
        nonlocal calls
        calls += 1

    c = consumer(committed, js, nats_prefix, handler)
    background(c.run())

    async def dead() -> bool:
        return len(await list_dead_letters(committed)) == 2

    await eventually(dead)
    c.stop()
    letters = await list_dead_letters(committed)
    assert calls == 0 and all("invalid message" in letter.error for letter in letters)
    assert {letter.event_id for letter in letters} == {"garbage", str(bad_payload.id)}


async def test_follow_up_events_carry_the_correlation_and_causation_of_the_handled_event(
    committed: AsyncEngine, js: JetStreamContext, nats_prefix: str, background
):
    envelope = config_envelope(correlation_id="req-42")
    await publish(js, nats_prefix, envelope.to_json(), msg_id=str(envelope.id))

    async def handler(session: AsyncSession, envelope: Envelope) -> None:
        now = datetime.now(UTC)
        await record_event(
            session, service="billing", type="billing.trial.started",
            aggregate_type="subscription", aggregate_id="s-1",
            data={"user_id": uuid.uuid4(), "plan": "growth",
                  "trial_start_date": now, "trial_end_date": now},
        )  # fmt: skip

    c = consumer(committed, js, nats_prefix, handler)
    background(c.run())

    async def followed() -> bool:
        return await count(committed, "events") == 1

    await eventually(followed)
    c.stop()
    async with committed.connect() as conn:
        row = (await conn.execute(sa.text("SELECT correlation_id, causation_id FROM events"))).one()
    assert tuple(row) == ("req-42", str(envelope.id))
