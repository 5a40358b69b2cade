"""``scout db seed --scale N``: a realistic, skewed synthetic data set, written with COPY.

Scale 1 = 10k users (each with its four 1:1 child rows), 100k campaigns, 200k jobs, 1M stored
creators (``scraping_results`` batches of ≤ 250 plus one ``scraping_job_creators`` dedupe row
each), 50k creator profiles, 20k lists and 100k list items. Ownership follows a Zipf law, so a
few heavy users own most rows (user 0 holds ~10% of all campaigns), one job holds 10% of all
stored creators (100k at scale 1: the deep results page) and one list holds 10% of all items.

Idempotent per scale: everything is written in one transaction together with a record row in
``system_configurations`` (category ``seed``, key ``scale:<N>``); a second run of the same scale
finds the record and does nothing. Rows of different scales never collide: identifiers are
namespaced by the scale and generated from an RNG seeded with it (the same scale always yields
the same ids).
"""

import math
from dataclasses import dataclass
from typing import Any

import orjson
import psycopg

from shared.db import libpq_url

from . import seeding
from .seeding import Progress

SEED_CATEGORY = "seed"
ADVISORY_LOCK = 0x5C0075EED  # one seeder at a time per database
# Per-scale-1 row counts.
BASE = {
    "users": 10_000,
    "campaigns": 100_000,
    "scraping_jobs": 200_000,
    "creators": 1_000_000,
    "creator_profiles": 50_000,
    "creator_lists": 20_000,
    "list_items": 100_000,
}
# Tables whose statistics and visibility map are refreshed after a seed.
SEEDED_TABLES = (
    *("users", "user_subscriptions", "user_billing", "user_usage", "user_system_data"),
    *("campaigns", "scraping_jobs", "scraping_results", "scraping_job_creators"),
    *("scraping_job_flag_counts", "scraping_job_keywords"),
    *("creator_profiles", "creator_lists", "creator_list_tags", "list_items"),
    "campaign_user_stats",
    "usage_reservations",
    "scraping_user_days",
    "billing_usage_months",
)


def scale_tag(scale: float) -> str:
    """``1`` → ``"1"``, ``0.01`` → ``"0.01"``: the scale as recorded and shown."""
    if scale <= 0 or not math.isfinite(scale):
        raise ValueError(f"scale must be a positive number, got {scale!r}")
    return f"{scale:g}"


def plan_counts(scale: float) -> dict[str, int]:
    """Rows per table for ``scale`` (every count ≥ a small floor so tiny scales still work)."""
    floors = {"users": 5, "campaigns": 10, "scraping_jobs": 20, "creators": 500}
    floors |= {"creator_profiles": 50, "creator_lists": 5, "list_items": 20}
    return {name: max(floors[name], round(n * scale)) for name, n in BASE.items()}


@dataclass
class SeedResult:
    scale: str
    created: bool  # False: this scale was already seeded, nothing was written
    record: dict[str, Any]


def seeded_scales(conn: psycopg.Connection) -> dict[str, dict[str, Any]]:
    """Every recorded seed in the database: scale tag → its record."""
    rows = conn.execute(
        "SELECT key, value FROM system_configurations WHERE category = %s", (SEED_CATEGORY,)
    ).fetchall()
    return {key.removeprefix("scale:"): orjson.loads(value) for key, value in rows}


def seed(
    database_url: str, scale: float, *, progress: Progress | None = None, vacuum: bool = True
) -> SeedResult:
    """Seed ``scale`` into the database unless it is already there (see the module docstring)."""
    tag = scale_tag(scale)
    report = progress or (lambda table, n, planned: None)
    with psycopg.connect(libpq_url(database_url)) as conn:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (ADVISORY_LOCK,))
            existing = seeded_scales(conn).get(tag)
            if existing is not None:
                return SeedResult(scale=tag, created=False, record=existing)
            record = seeding.write(conn, plan_counts(scale), tag, report)
            conn.execute(
                "INSERT INTO system_configurations (category, key, value, value_type, description,"
                " is_hot_reloadable) VALUES (%s, %s, %s, 'json', %s, false)",
                (
                    SEED_CATEGORY,
                    f"scale:{tag}",
                    orjson.dumps(record).decode(),
                    "synthetic data written by scout db seed",
                ),
            )
        if vacuum:
            # Fresh visibility map and statistics, as autovacuum would leave them in production:
            # index-only scans and the planner's estimates are then what a live system sees.
            conn.autocommit = True
            for table in SEEDED_TABLES:
                conn.execute(f"VACUUM (ANALYZE) {table}")
    return SeedResult(scale=tag, created=True, record=record)
