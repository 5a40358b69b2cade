"""``scout db seed``: exact counts, every constraint met, skew, idempotency per scale."""

import json
import threading

import psycopg

from shared.models.scraping import RESULT_BATCH_MAX
from tooling.perf.analyze import analyze
from tooling.perf.seed import plan_counts, seed, seeded_scales

from ..support.cli import run_scout
from .conftest import SCALE

TABLES = ("users", "user_subscriptions", "user_billing", "user_usage", "user_system_data",
          "campaigns", "scraping_jobs", "scraping_results", "scraping_job_creators",
          "creator_profiles", "creator_lists", "list_items")  # fmt: skip


def _counts(conn: psycopg.Connection) -> dict[str, int]:
    return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}


def test_seed_writes_the_planned_rows_and_records_them(seeded, conn):
    planned = plan_counts(SCALE)
    counts = _counts(conn)
    assert seeded.created
    for table in ("users", "user_subscriptions", "user_billing", "user_usage", "user_system_data"):
        assert counts[table] == planned["users"], table
    assert counts["campaigns"] == planned["campaigns"] == 1000
    assert counts["scraping_jobs"] == planned["scraping_jobs"] == 2000
    assert counts["scraping_job_creators"] == planned["creators"] == 10_000
    assert counts["list_items"] == planned["list_items"] == 1000
    stored = conn.execute("SELECT sum(creator_count), max(creator_count) FROM scraping_results")
    assert stored.fetchone() == (10_000, RESULT_BATCH_MAX)
    assert seeded_scales(conn)["0.01"]["counts"]["scraping_job_creators"] == 10_000


def test_every_table_the_seed_filled_is_vacuumed_and_analyzed(seeded, conn):
    """As autovacuum leaves a live database: index-only scans need the visibility map, and
    plans need statistics."""
    rows = conn.execute(
        "SELECT relname FROM pg_stat_user_tables"
        " WHERE n_live_tup > 0 AND (last_vacuum IS NULL OR last_analyze IS NULL)"
        " AND relname NOT IN ('alembic_version', 'subscription_plans', 'system_configurations')"
    ).fetchall()
    assert rows == []


def test_seeded_data_is_consistent_and_skewed(seeded, conn):
    report = analyze(conn)
    assert [q["check"] for q in report["quality"] if not q["ok"]] == []
    record = seeded.record
    # The heaviest user owns ~10% of campaigns (Zipf), the heavy job 10% of stored creators.
    assert record["heavy_user"]["campaigns"] > 10 * record["ordinary_user"]["campaigns"]
    heavy_job = conn.execute(
        "SELECT processed_results, (SELECT count(*) FROM scraping_job_creators WHERE job_id = %s)"
        " FROM scraping_jobs WHERE id = %s",
        (record["heavy_job"]["id"], record["heavy_job"]["id"]),
    ).fetchone()
    assert heavy_job == (1000, 1000)
    ordinals = conn.execute(
        "SELECT array_agg(first_ordinal ORDER BY batch_no) FROM scraping_results WHERE job_id = %s",
        (record["heavy_job"]["id"],),
    ).fetchone()[0]
    assert ordinals == [0, 250, 500, 750]


def test_seeding_the_same_scale_again_writes_nothing(seeded, perf_url, conn):
    before = _counts(conn)
    again = seed(perf_url, SCALE)
    assert not again.created
    assert again.record["heavy_job"] == seeded.record["heavy_job"]
    assert _counts(conn) == before


def test_concurrent_seeds_of_one_scale_write_it_once(seeded, perf_url, conn):
    before = _counts(conn)
    outcomes: list[bool] = []
    threads = [
        threading.Thread(target=lambda: outcomes.append(seed(perf_url, 0.001).created))
        for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == [False, False, True]
    added = {t: _counts(conn)[t] - before[t] for t in TABLES}
    assert added["users"] == plan_counts(0.001)["users"]
    assert added["scraping_job_creators"] == plan_counts(0.001)["creators"]
    assert set(seeded_scales(conn)) == {"0.01", "0.001"}


def test_cli_seed_reports_an_existing_scale_as_json(seeded, perf_url, monkeypatch):
    result = run_scout(
        monkeypatch, "db", "seed", "--scale", str(SCALE), "--json", database_url=perf_url
    )
    bad = run_scout(monkeypatch, "db", "seed", "--scale", "0", database_url=perf_url)
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["created"] is False and body["scale"] == "0.01"
    assert bad.exit_code == 2 and "positive" in bad.output
