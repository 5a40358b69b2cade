"""Migration 0016 carries the outbox in flight: unpublished events stay unpublished (with their
failed attempts) across the upgrade and back, published ones stay published."""

import psycopg

from shared.db import libpq_url
from tooling import migrate

_INSERT = (
    "INSERT INTO events (service, type, aggregate_type, aggregate_id, published_at,"
    " publish_attempts, last_error) VALUES (%s, 't', 'a', %s, {published}, %s, %s) RETURNING id"
)


def _event(conn: psycopg.Connection, key: str, *, published: bool, attempts=0, error=None):
    sql = _INSERT.format(published="now()" if published else "NULL")
    return conn.execute(sql, ("billing", key, attempts, error)).fetchone()[0]


def _pending(conn: psycopg.Connection) -> dict:
    rows = conn.execute(
        "SELECT p.id, p.publish_attempts, p.last_error, p.seq = e.seq AND p.service = e.service"
        " FROM events_pending p JOIN events e ON e.id = p.id"
    ).fetchall()
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def _publication(conn: psycopg.Connection) -> dict:
    rows = conn.execute(
        "SELECT id, published_at IS NOT NULL, publish_attempts, last_error FROM events"
    ).fetchall()
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def test_unpublished_events_stay_unpublished_up_and_down(scratch_database):
    url = scratch_database()
    migrate.upgrade(url, "0015")
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        sent = _event(conn, "sent", published=True, attempts=1)
        waiting = _event(conn, "waiting", published=False)
        failing = _event(conn, "failing", published=False, attempts=3, error="no ack")

    migrate.upgrade(url, "0016")
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        assert _pending(conn) == {waiting: (0, None, True), failing: (3, "no ack", True)}
        # An event written from here on is pending from the statement that inserts it.
        new = conn.execute(
            "INSERT INTO events (service, type, aggregate_type, aggregate_id)"
            " VALUES ('campaign', 't', 'a', 'new') RETURNING id"
        ).fetchone()[0]
        assert _pending(conn)[new] == (0, None, True)
        conn.execute("DELETE FROM events_pending WHERE id = %s", (waiting,))  # the relay sent it

    migrate.downgrade(url, "0015")
    with psycopg.connect(libpq_url(url)) as conn:
        assert _publication(conn) == {
            sent: (True, 0, None),  # published (its attempt count is not kept)
            waiting: (True, 0, None),
            failing: (False, 3, "no ack"),
            new: (False, 0, None),
        }
        tables = conn.execute("SELECT to_regclass('events_pending')").fetchone()[0]
    assert tables is None

    migrate.upgrade(url, "head")
    with psycopg.connect(libpq_url(url)) as conn:
        assert _pending(conn) == {failing: (3, "no ack", True), new: (0, None, True)}
    assert migrate.drift(url) == []
