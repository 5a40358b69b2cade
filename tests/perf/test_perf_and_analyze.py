"""``scout db perf`` (JSON shape, plan check) and ``scout db analyze`` (finds what it claims)."""

import json

import pytest

from tooling.perf.analyze import analyze
from tooling.perf.patterns import _big_tables, _seq_scans, patterns_for

from ..support.cli import run_scout

KEYS = {"pattern", "p50_ms", "p99_ms", "baseline_p50_ms", "baseline_p99_ms", "ratio"}


def _invoke(monkeypatch, url: str, *args: str):
    return run_scout(monkeypatch, *args, database_url=url)


def test_perf_json_lists_every_pattern_with_its_baseline(seeded, perf_url, monkeypatch):
    result = _invoke(monkeypatch, perf_url, "db", "perf", "--scale", "0.01", "--iterations", "10", "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["pattern"] for r in rows] == [p.name for p in patterns_for(seeded.record)]
    for row in rows:
        assert row.keys() >= KEYS
        assert 0 < row["p50_ms"] <= row["p99_ms"]
        assert 0 < row["baseline_p50_ms"] <= row["baseline_p99_ms"]
        # p50s are printed rounded, the ratio comes from the unrounded figures.
        assert row["ratio"] == pytest.approx(row["p50_ms"] / row["baseline_p50_ms"], rel=0.05)
        assert row["statements"] >= 1 and row["plan_ok"], row


def test_perf_refuses_an_unseeded_scale(seeded, perf_url, monkeypatch):
    result = _invoke(monkeypatch, perf_url, "db", "perf", "--scale", "3")
    assert result.exit_code == 1
    assert "not seeded" in result.output


async def test_plan_check_flags_a_sequential_scan_on_a_big_table(seeded, perf_url):
    import psycopg

    from shared.db import libpq_url

    async with await psycopg.AsyncConnection.connect(libpq_url(perf_url)) as conn:
        big = await _big_tables(conn)
        assert "scraping_job_creators" in big  # 10k rows at scale 0.01
        # No index holds the bio (a narrow index holding creator_key alone could be walked whole).
        by_key = "SELECT * FROM scraping_job_creators WHERE creator ->> 'bio' = %(k)s"
        assert await _seq_scans(conn, [(by_key, {"k": "x"})], big) == ["scraping_job_creators"]
        by_job = "SELECT * FROM scraping_job_creators WHERE job_id = %(j)s"
        job = seeded.record["heavy_job"]["id"]
        assert await _seq_scans(conn, [(by_job, {"j": job})], big) == []


def test_analyze_reports_drift_and_unindexed_foreign_keys(seeded, conn):
    list_id = seeded.record["heavy_list"]["id"]
    with conn.transaction(force_rollback=True):
        conn.execute("UPDATE creator_lists SET creator_count = creator_count + 1 WHERE id = %s", (list_id,))  # fmt: skip
        conn.execute("UPDATE creator_list_tags SET list_archived = NOT list_archived WHERE id = (SELECT min(id::text)::uuid FROM creator_list_tags)")  # fmt: skip
        conn.execute("CREATE TABLE perf_probe (id int PRIMARY KEY, user_id uuid REFERENCES users(id))")  # fmt: skip
        report = analyze(conn)
    drift = next(q for q in report["quality"] if q["check"] == "list_count_drift")
    assert drift["count"] == 1 and not drift["ok"]
    tags = next(q for q in report["quality"] if q["check"] == "creator_list_tags_drift")
    assert tags["count"] == 1 and not tags["ok"]
    assert [f["table"] for f in report["unindexed_foreign_keys"]] == ["perf_probe"]
    after = analyze(conn)  # rolled back: nothing drifts
    assert after["unindexed_foreign_keys"] == []
    assert all(q["ok"] for q in after["quality"] if q["check"].endswith("_drift"))
    campaigns = next(d for d in report["distributions"] if d["metric"] == "campaigns per user")
    assert campaigns["sum"] == 1000 and campaigns["max"] == seeded.record["heavy_user"]["campaigns"]


def test_cli_analyze_json(seeded, perf_url, monkeypatch):
    result = _invoke(monkeypatch, perf_url, "db", "analyze", "--json")
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert set(body) == {"quality", "distributions", "unused_indexes", "unindexed_foreign_keys", "seq_scanned_tables"}  # fmt: skip
