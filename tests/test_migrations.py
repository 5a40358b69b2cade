"""The one Alembic history: a single head, a clean round trip, and no drift from the models."""

import psycopg
import pytest

from shared.db import libpq_url
from shared.models import OWNERSHIP, metadata
from tooling import migrate


def test_history_has_a_single_head():
    assert len(migrate.script_directory().get_heads()) == 1


def test_fresh_database_is_at_head_with_no_drift(database_url):
    status = migrate.status(database_url)
    assert status.at_head and status.pending == []
    assert migrate.drift(database_url) == []


def test_upgrade_downgrade_upgrade_round_trip(scratch_database):
    url = scratch_database()
    migrate.upgrade(url, "head")
    migrate.downgrade(url, "base")
    with psycopg.connect(libpq_url(url)) as conn:
        left = conn.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
        ).fetchone()[0]
        functions = conn.execute(
            "SELECT count(*) FROM pg_proc WHERE proname = 'scout_set_updated_at'"
        ).fetchone()[0]
    assert (left, functions) == (0, 0), "downgrade to base must remove everything"
    migrate.upgrade(url, "head")
    assert migrate.drift(url) == []
    assert migrate.status(url).at_head


def test_drift_is_detected_when_database_and_models_differ(scratch_database):
    url = scratch_database()
    migrate.upgrade(url, "head")
    with psycopg.connect(libpq_url(url)) as conn:
        conn.execute("ALTER TABLE campaigns ADD COLUMN stray text")
        conn.execute("DROP INDEX ix_scraping_jobs_keywords_gin")
    diffs = migrate.drift(url)
    kinds = {d[0] if isinstance(d, tuple) else d[0][0] for d in diffs}
    assert "remove_column" in kinds and "add_index" in kinds


def test_status_reports_pending_revisions_on_an_empty_database(scratch_database):
    url = scratch_database()
    status = migrate.status(url)
    assert not status.at_head
    assert len(status.pending) >= 1


def test_every_table_has_an_owner_and_every_owner_a_table():
    assert set(OWNERSHIP) == set(metadata.tables)


@pytest.mark.parametrize("table", sorted(metadata.tables))
def test_every_table_has_an_updated_at_trigger(database_url, table):
    with psycopg.connect(libpq_url(database_url)) as conn:
        row = conn.execute(
            "SELECT 1 FROM pg_trigger WHERE tgrelid = %s::regclass AND tgname = %s",
            (table, f"trg_{table}_updated_at"),
        ).fetchone()
    assert row is not None, f"{table} has no updated_at trigger; add it in its migration"
