"""``scout db analyze``: data quality, distributions, and unused or missing indexes.

Every check is one SQL statement; a check's ``count`` is the number of offending rows (0 = ok).
"""

from typing import Any

import psycopg

from shared.models.enums import CampaignStatus, ListBucket, UsageResource


def _stats_drift() -> str:
    """Users whose ``campaign_user_stats`` row (none = zeros) differs from a recount."""
    statuses, buckets = [s.value for s in CampaignStatus], [b.value for b in ListBucket]
    kept = ", ".join(f"coalesce(s.{c}, 0)" for c in ("campaigns", *statuses, "lists", *buckets))
    counted = ", ".join(
        f"coalesce({c}, 0)"
        for c in ("c.n", *(f"c.{s}" for s in statuses), "l.n", *(f"p.{b}" for b in buckets))
    )
    by_status = ", ".join(f"count(*) FILTER (WHERE status = '{s}') AS {s}" for s in statuses)
    by_bucket = ", ".join(f"count(*) FILTER (WHERE i.bucket = '{b}') AS {b}" for b in buckets)
    return f"""SELECT count(*) FROM users u
      LEFT JOIN campaign_user_stats s ON s.user_id = u.id
      LEFT JOIN (SELECT user_id, count(*) AS n, {by_status} FROM campaigns
                 WHERE deleted_at IS NULL GROUP BY user_id) c ON c.user_id = u.id
      LEFT JOIN (SELECT user_id, count(*) AS n FROM creator_lists GROUP BY user_id) l
             ON l.user_id = u.id
      LEFT JOIN (SELECT l.user_id, {by_bucket} FROM list_items i
                 JOIN creator_lists l ON l.id = i.list_id WHERE NOT l.is_archived
                 GROUP BY l.user_id) p ON p.user_id = u.id
      WHERE ({kept}) IS DISTINCT FROM ({counted})"""


STATS_DRIFT = _stats_drift()

# (user, UTC day) pairs whose ``scraping_user_days`` row (none = zeros) differs from a recount
# of the jobs created that day.
DAYS_DRIFT = """SELECT count(*) FROM scraping_user_days s
  FULL JOIN (SELECT user_id, (created_at AT TIME ZONE 'UTC')::date AS day, count(*) AS searches,
                    count(*) FILTER (WHERE status = 'completed') AS completed,
                    coalesce(sum(processed_results)
                             FILTER (WHERE status NOT IN ('pending', 'processing')), 0) AS creators
             FROM scraping_jobs GROUP BY 1, 2) c ON c.user_id = s.user_id AND c.day = s.day
  WHERE (coalesce(s.searches, 0), coalesce(s.completed, 0), coalesce(s.creators, 0))
        IS DISTINCT FROM (coalesce(c.searches, 0), coalesce(c.completed, 0), coalesce(c.creators, 0))"""


# (job, verified, has_email) combinations whose ``scraping_job_flag_counts`` row (none = zero)
# differs from a recount of the job's creators.
FLAGS_DRIFT = """SELECT count(*) FROM scraping_job_flag_counts f
  FULL JOIN (SELECT job_id, verified, has_email, count(*) AS creators FROM scraping_job_creators
             GROUP BY 1, 2, 3) c
    ON c.job_id = f.job_id AND c.verified = f.verified AND c.has_email = f.has_email
  WHERE coalesce(f.creators, 0) <> coalesce(c.creators, 0)"""

# Entries of ``creator_list_tags`` missing, extra or out of date (user, order, archived)
# against the lists' tags (string elements of 1 to 100 characters).
LIST_TAGS_DRIFT = """SELECT count(*) FROM creator_list_tags t
  FULL JOIN (SELECT DISTINCT l.id AS list_id, l.user_id, e.value #>> '{}' AS tag, l.updated_at,
                    l.is_archived
             FROM creator_lists l CROSS JOIN LATERAL jsonb_array_elements(
               CASE WHEN jsonb_typeof(l.tags) = 'array' THEN l.tags ELSE '[]'::jsonb END) e
             WHERE jsonb_typeof(e.value) = 'string'
               AND char_length(e.value #>> '{}') BETWEEN 1 AND 100) c
    ON c.list_id = t.list_id AND c.tag = t.tag
  WHERE (t.user_id, t.list_updated_at, t.list_archived)
        IS DISTINCT FROM (c.user_id, c.updated_at, c.is_archived)"""


def _months_drift() -> str:
    """(user, UTC month) pairs whose ``billing_usage_months`` row (none = zeros) differs from a
    recount of the confirmed reservations settled that month."""
    resources = [r.value for r in UsageResource]
    sums = ", ".join(
        f"coalesce(sum(used_amount) FILTER (WHERE resource = '{r}'), 0) AS {r}" for r in resources
    )
    kept = ", ".join(f"coalesce(m.{r}, 0)" for r in resources)
    counted = ", ".join(f"coalesce(c.{r}, 0)" for r in resources)
    return f"""SELECT count(*) FROM billing_usage_months m
  FULL JOIN (SELECT user_id, date_trunc('month', settled_at AT TIME ZONE 'UTC')::date AS month,
                    {sums}
             FROM usage_reservations WHERE status = 'confirmed' AND settled_at IS NOT NULL
             GROUP BY 1, 2) c ON c.user_id = m.user_id AND c.month = m.month
  WHERE ({kept}) IS DISTINCT FROM ({counted})"""


MONTHS_DRIFT = _months_drift()

# name -> (what it means, SQL returning the number of offending rows)
QUALITY_CHECKS: dict[str, tuple[str, str]] = {
    "users_missing_children": (
        "users lacking one of their four 1:1 child rows",
        """SELECT count(*) FROM users u WHERE u.deleted_at IS NULL AND (
             NOT EXISTS (SELECT 1 FROM user_subscriptions c WHERE c.user_id = u.id)
          OR NOT EXISTS (SELECT 1 FROM user_billing c WHERE c.user_id = u.id)
          OR NOT EXISTS (SELECT 1 FROM user_usage c WHERE c.user_id = u.id)
          OR NOT EXISTS (SELECT 1 FROM user_system_data c WHERE c.user_id = u.id))""",
    ),
    "job_user_differs_from_campaign": (
        "jobs whose user_id is not their campaign's owner",
        """SELECT count(*) FROM scraping_jobs j JOIN campaigns c ON c.id = j.campaign_id
           WHERE j.user_id <> c.user_id""",
    ),
    "list_count_drift": (
        "lists whose creator_count/follower_sum differ from their items",
        """SELECT count(*) FROM creator_lists l LEFT JOIN (
             SELECT i.list_id, count(*) AS n, coalesce(sum(p.followers), 0) AS f
             FROM list_items i JOIN creator_profiles p ON p.id = i.creator_id GROUP BY i.list_id
           ) a ON a.list_id = l.id
           WHERE l.creator_count <> coalesce(a.n, 0)""",
    ),
    "creator_list_tags_drift": (
        "(list, tag) entries (lists filtered by tag) missing, extra or out of date",
        LIST_TAGS_DRIFT,
    ),
    "campaign_user_stats_drift": (
        "users whose campaign counters (dashboard, campaigns page total) differ from a recount",
        STATS_DRIFT,
    ),
    "scraping_user_days_drift": (
        "(user, day) pairs whose search counters (dashboard's 30 days) differ from a recount",
        DAYS_DRIFT,
    ),
    "scraping_job_flag_counts_drift": (
        "(job, verified, has_email) combinations whose count (narrowed totals) differs from a"
        " recount",
        FLAGS_DRIFT,
    ),
    "billing_usage_months_drift": (
        "(user, month) pairs whose settled usage (usage history) differs from a recount",
        MONTHS_DRIFT,
    ),
    "job_results_drift": (
        "finished jobs whose processed_results differ from the creators stored",
        """SELECT count(*) FROM scraping_jobs j LEFT JOIN (
             SELECT job_id, sum(creator_count) AS n FROM scraping_results GROUP BY job_id
           ) r ON r.job_id = j.id
           WHERE j.status = 'completed' AND j.processed_results <> coalesce(r.n, 0)""",
    ),
    "results_without_dedupe_rows": (
        "jobs whose stored creators outnumber their dedupe keys",
        """SELECT count(*) FROM (
             SELECT job_id, sum(creator_count) AS n FROM scraping_results GROUP BY job_id) r
           WHERE r.n > (SELECT count(*) FROM scraping_job_creators k WHERE k.job_id = r.job_id)""",
    ),
    "jobs_past_timeout": (
        "pending/processing jobs past their timeout (the sweeper is behind)",
        """SELECT count(*) FROM scraping_jobs
           WHERE status IN ('pending', 'processing') AND timeout_at < now()""",
    ),
    "trialing_past_end": (
        "subscriptions still 'trialing' after trial_end_date",
        """SELECT count(*) FROM user_subscriptions
           WHERE subscription_status = 'trialing' AND trial_end_date < now()""",
    ),
}

DISTRIBUTIONS: dict[str, str] = {
    "campaigns per user": "SELECT count(c.id) FROM users u LEFT JOIN campaigns c ON c.user_id = u.id GROUP BY u.id",
    "jobs per campaign": "SELECT count(j.id) FROM campaigns c LEFT JOIN scraping_jobs j ON j.campaign_id = c.id GROUP BY c.id",
    "creators per job": "SELECT processed_results FROM scraping_jobs",
    "items per list": "SELECT creator_count FROM creator_lists",
}
_DISTRIBUTION = """
SELECT count(*), coalesce(min(n), 0), percentile_disc(0.5) WITHIN GROUP (ORDER BY n),
       percentile_disc(0.9) WITHIN GROUP (ORDER BY n),
       percentile_disc(0.99) WITHIN GROUP (ORDER BY n), coalesce(max(n), 0), coalesce(sum(n), 0)
FROM ({sql}) AS d(n)
"""

# Non-unique indexes never scanned since statistics were last reset.
UNUSED_INDEXES = """
SELECT s.relname, s.indexrelname, pg_relation_size(s.indexrelid)
FROM pg_stat_user_indexes s JOIN pg_index i ON i.indexrelid = s.indexrelid
WHERE s.schemaname = current_schema() AND s.idx_scan = 0 AND NOT i.indisunique
ORDER BY pg_relation_size(s.indexrelid) DESC, s.relname
"""

# Foreign keys with no index whose leading columns are the key's columns.
UNINDEXED_FOREIGN_KEYS = """
SELECT c.conrelid::regclass::text, c.conname,
       (SELECT string_agg(a.attname, ', ') FROM unnest(c.conkey) k(n)
          JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n)
FROM pg_constraint c
WHERE c.contype = 'f' AND c.connamespace = current_schema()::regnamespace
  AND NOT EXISTS (
    SELECT 1 FROM pg_index i WHERE i.indrelid = c.conrelid
      AND (i.indkey::int2[])[0:cardinality(c.conkey) - 1] = c.conkey)
ORDER BY 1, 2
"""

# Tables read mostly by sequential scans although they are big: an index is probably missing.
SEQ_SCANNED_TABLES = """
SELECT relname, seq_scan, seq_tup_read, coalesce(idx_scan, 0), n_live_tup
FROM pg_stat_user_tables
WHERE schemaname = current_schema() AND n_live_tup >= %s AND seq_scan > coalesce(idx_scan, 0)
ORDER BY seq_tup_read DESC
"""


def analyze(conn: psycopg.Connection, *, big_table_rows: int = 10_000) -> dict[str, Any]:
    """The whole report as plain data (what ``--json`` prints)."""
    quality = []
    for name, (meaning, sql) in QUALITY_CHECKS.items():
        count = conn.execute(sql).fetchone()[0]
        quality.append({"check": name, "meaning": meaning, "count": count, "ok": count == 0})
    distributions = []
    for name, sql in DISTRIBUTIONS.items():
        rows, low, p50, p90, p99, high, total = conn.execute(
            _DISTRIBUTION.format(sql=sql)
        ).fetchone()
        distributions.append(
            {"metric": name, "rows": rows, "min": low, "p50": p50 or 0, "p90": p90 or 0,
             "p99": p99 or 0, "max": high, "sum": int(total)}
        )  # fmt: skip
    unused = [
        {"table": t, "index": i, "bytes": size} for t, i, size in conn.execute(UNUSED_INDEXES)
    ]
    unindexed = [
        {"table": t, "constraint": name, "columns": cols}
        for t, name, cols in conn.execute(UNINDEXED_FOREIGN_KEYS)
    ]
    seq_scanned = [
        {"table": t, "seq_scans": s, "rows_read_by_seq": r, "index_scans": i, "live_rows": n}
        for t, s, r, i, n in conn.execute(SEQ_SCANNED_TABLES, (big_table_rows,))
    ]
    return {
        "quality": quality,
        "distributions": distributions,
        "unused_indexes": unused,
        "unindexed_foreign_keys": unindexed,
        "seq_scanned_tables": seq_scanned,
    }
