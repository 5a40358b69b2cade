"""The ``scout`` CLI against real databases: migrate, db check, db inspect."""

import json

import psycopg
import pytest

from shared.auth import TokenVerifier
from shared.db import libpq_url
from shared.errors import Unauthorized
from shared.models import metadata
from shared.settings import Settings
from tooling import migrate

from .support.cli import run_scout


@pytest.fixture
def run(monkeypatch):
    def invoke(url: str, *args: str):
        return run_scout(monkeypatch, *args, database_url=url)

    return invoke


def test_migrate_check_and_db_check_pass_on_a_fresh_database(run, database_url):
    assert run(database_url, "migrate", "check").exit_code == 0
    result = run(database_url, "db", "check")
    assert result.exit_code == 0, result.output
    assert f"all {len(metadata.tables)} tables present" in result.output


def test_migrate_check_fails_when_models_and_database_differ(run, scratch_database):
    url = scratch_database()
    migrate.upgrade(url)
    with psycopg.connect(libpq_url(url)) as conn:
        conn.execute("ALTER TABLE users DROP COLUMN industry")
    result = run(url, "migrate", "check")
    assert result.exit_code == 1
    assert "industry" in result.output


def test_migrate_check_fails_before_upgrade_and_upgrade_fixes_it(run, scratch_database):
    url = scratch_database()
    assert run(url, "migrate", "check").exit_code == 1
    assert run(url, "db", "check").exit_code == 1
    status = json.loads(run(url, "migrate", "status", "--json").output)
    assert status["at_head"] is False and status["pending"]
    assert run(url, "migrate", "upgrade").exit_code == 0
    assert run(url, "migrate", "check").exit_code == 0
    assert run(url, "migrate", "downgrade", "base").exit_code == 0
    assert json.loads(run(url, "migrate", "status", "--json").output)["current"] == []


def test_db_check_fails_clearly_when_the_server_does_not_answer(run):
    result = run("postgresql://postgres@127.0.0.1:1/none", "db", "check")
    assert result.exit_code == 1
    assert "cannot connect" in result.output


def test_db_inspect_reports_tables_owners_rows_and_indexes(run, database_url):
    result = run(database_url, "db", "inspect", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    tables = {t["table"]: t for t in report["tables"]}
    assert len(tables) == len(metadata.tables)
    assert tables["subscription_plans"]["rows"] == 6
    assert tables["subscription_plans"]["owner"] == "billing"
    assert tables["events"]["owner"] == "shared"
    names = {i["index"] for i in report["indexes"]}
    assert {"ix_scraping_jobs_keywords_gin", "uq_users_user_id"} <= names
    kept = {r["table"]: r for r in report["retention"]}
    assert set(kept) == {"events", "inbox", "event_attempts", "webhook_events",
                         "background_jobs", "rate_limits", "dead_letters",
                         "idempotency_keys", "scraping_enrichments"}  # fmt: skip
    assert (
        kept["inbox"]["retention_days"] == 14 and kept["inbox"]["setting"] == "RETENTION_INBOX_DAYS"
    )
    assert kept["events"]["pruned"] == "published events"
    human = run(database_url, "db", "inspect")
    assert human.exit_code == 0 and "subscription_plans" in human.output
    assert "Retention (pruned by every worker" in human.output


async def test_dev_token_is_accepted_by_the_dev_configuration(tmp_path, monkeypatch):
    result = run_scout(
        monkeypatch, "dev-token", "user_dev_1", "--ttl", "600",
        xdg_data_home=str(tmp_path), scout_env="development",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    token = result.stdout.strip().splitlines()[0]
    assert (tmp_path / "scout" / "dev-jwt" / "private.pem").stat().st_mode & 0o077 == 0
    verifier = TokenVerifier(Settings(scout_env="development"))
    assert (await verifier.verify(token)).clerk_user_id == "user_dev_1"
    # A verifier with a different key (another machine's dev pair) rejects it.
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "other"))
    with pytest.raises(Unauthorized):
        await TokenVerifier(Settings(scout_env="development")).verify(token)
