"""``scout events tail`` and ``scout events dead-letters`` against real NATS and Postgres."""

import asyncio
import json

import pytest
import sqlalchemy as sa
from nats.js import JetStreamContext
from sqlalchemy.ext.asyncio import AsyncEngine
from typer.testing import CliRunner

from shared.events.dead_letters import list_dead_letters, record_dead_letter
from shared.events.envelope import prefixed, stream_name
from shared.events.relay import Relay
from shared.settings import get_settings
from tooling.cli.events import app

from .test_consumer import SUBJECT, config_envelope
from .test_relay import record_config_changes

runner = CliRunner()


@pytest.fixture
def scout(monkeypatch, database_url: str, nats_url: str, nats_prefix: str):
    """Run ``scout events …`` in a thread (the command runs its own event loop)."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("NATS_URL", nats_url)
    monkeypatch.setenv("SCOUT_NATS_PREFIX", nats_prefix)
    monkeypatch.setenv("COLUMNS", "250")  # rich wraps tables to the terminal width
    get_settings.cache_clear()

    async def invoke(*args: str):
        return await asyncio.to_thread(runner.invoke, app, list(args))

    yield invoke
    get_settings.cache_clear()


async def test_tail_json_prints_one_envelope_per_line_and_stops_at_the_limit(
    committed: AsyncEngine, js: JetStreamContext, nats_prefix: str, scout
):
    ids = await record_config_changes(committed, 4)
    await Relay(committed, js, "identity", prefix=nats_prefix).drain()
    result = await scout("tail", "--json", "--all", "--limit", "3")
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert [line["id"] for line in lines] == [str(i) for i in ids[:3]]
    assert lines[0]["type"] == "platform.config.changed" and lines[0]["source"] == "identity"


async def test_tail_shows_live_events_as_readable_lines(
    js: JetStreamContext, nats_prefix: str, scout
):
    tail = asyncio.ensure_future(scout("tail", "--limit", "1"))
    for _ in range(100):  # publish until the tail (subscribed at some point) has seen one
        await js.publish(prefixed(SUBJECT, nats_prefix), config_envelope().to_json())
        await asyncio.sleep(0.05)
        if tail.done():
            break
    result = await tail
    assert result.exit_code == 0, result.output
    assert "platform.config.changed.v1" in result.output and "config:test/k" in result.output


async def test_dead_letters_are_listed_and_replayed(
    committed: AsyncEngine, js: JetStreamContext, nats_prefix: str, scout
):
    envelope = config_envelope()
    letter = await record_dead_letter(
        committed, service="billing", consumer="billing_config", stream=None,
        subject=prefixed(SUBJECT, nats_prefix), event_id=str(envelope.id),
        payload=envelope.to_json(), headers={"Nats-Msg-Id": str(envelope.id)},
        error="Traceback …\nValueError: a bug in the handler", deliveries=1,
    )  # fmt: skip
    table = await scout("dead-letters")
    assert table.exit_code == 0 and "billing_config" in table.output
    assert "ValueError: a bug in the handler" in table.output
    listed = json.loads((await scout("dead-letters", "--json")).output)
    assert [d["id"] for d in listed] == [str(letter)] and listed[0]["deliveries"] == 1

    replayed = await scout("dead-letters", "--replay", "--id", str(letter))
    assert replayed.exit_code == 0 and "replayed 1" in replayed.output
    again = await scout("dead-letters", "--replay", "--id", str(letter))
    assert again.exit_code == 1  # no longer pending
    assert await list_dead_letters(committed) == []
    msg = await js.get_msg(stream_name("IDENTITY", nats_prefix), 1)
    assert msg.data == envelope.to_json() and msg.headers["Scout-Replay-Of"] == str(letter)
    async with committed.connect() as conn:
        status = await conn.scalar(sa.text("SELECT status FROM dead_letters"))
    assert status == "replayed"
    assert json.loads((await scout("dead-letters", "--json")).output) == []
