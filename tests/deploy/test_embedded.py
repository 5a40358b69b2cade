"""The last fallback: embedded Postgres and NATS from pip packages, on free loopback ports.

Resolved through ``tooling.infra`` exactly as a machine with only Python would be: no URL given,
nothing on the (here: deliberately closed) local port, no Docker.
"""

import socket
import time
from urllib.parse import urlsplit

import nats
import psycopg

from tooling import migrate
from tooling.infra import resolve_nats, resolve_postgres

CLOSED = "127.0.0.1:1"


def _port_open(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=0.5):
            return True
    except OSError:
        return False


async def test_embedded_nats_with_jetstream_is_the_fallback_and_stops_cleanly():
    resolved = resolve_nats(env_url="", local_url=f"nats://{CLOSED}", try_docker=False)
    try:
        assert resolved.source == "embedded"
        nc = await nats.connect(resolved.url)
        js = nc.jetstream()
        await js.add_stream(name="EMBEDDED_CHECK", subjects=["embedded.check"])
        ack = await js.publish("embedded.check", b"hello", headers={"Nats-Msg-Id": "one"})
        duplicate = await js.publish("embedded.check", b"hello", headers={"Nats-Msg-Id": "one"})
        assert ack.seq == 1 and duplicate.duplicate  # JetStream dedupe works: it is real JetStream
        await nc.close()
    finally:
        resolved.close()
    assert not _port_open(resolved.url)


def test_embedded_postgres_is_the_fallback_runs_our_migrations_and_stops_cleanly():
    started = time.monotonic()
    resolved = resolve_postgres(
        env_url="", local_url=f"postgresql://postgres@{CLOSED}/x", try_docker=False
    )
    try:
        assert resolved.source == "embedded"
        migrate.upgrade(resolved.url, "head")
        assert migrate.status(resolved.url).at_head
        with psycopg.connect(resolved.url) as conn:
            plans = conn.execute("SELECT count(*) FROM subscription_plans").fetchone()[0]
        assert plans >= 6
    finally:
        resolved.close()
    assert not _port_open(resolved.url)
    assert time.monotonic() - started < 60


def test_embedded_postgres_keeps_its_data_across_restarts(tmp_path):
    """``scout dev`` keeps the cluster under the user's data dir: a restart finds its data."""
    from tooling.embedded import start_postgres

    first = start_postgres(tmp_path / "pg")
    try:
        with psycopg.connect(first.url, autocommit=True) as conn:
            conn.execute("CREATE TABLE kept (v text)")
            conn.execute("INSERT INTO kept VALUES ('still here')")
    finally:
        first.stop()
    second = start_postgres(tmp_path / "pg")  # a new port, the same cluster
    try:
        with psycopg.connect(second.url) as conn:
            assert conn.execute("SELECT v FROM kept").fetchone()[0] == "still here"
    finally:
        second.stop()
    assert (tmp_path / "pg" / "data" / "PG_VERSION").exists()  # stop never deletes kept data
