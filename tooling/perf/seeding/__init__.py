"""The rows ``scout db seed`` writes, group by group, with COPY (see ``tooling/perf/seed.py``).

The steps run in a fixed order because each draws from the scale's one RNG and later steps
build on earlier ones; the same scale therefore always yields the same rows.
"""

from typing import Any

import psycopg

from .accounts import write_reservations, write_usage_and_system_data, write_users
from .lists import write_lists, write_profiles
from .searches import write_campaigns, write_jobs, write_stored_creators
from .state import KEYWORDS, Progress, Seeding

__all__ = ["Progress", "write"]


def write(
    conn: psycopg.Connection, counts: dict[str, int], tag: str, progress: Progress
) -> dict[str, Any]:
    """Write one scale's rows on ``conn`` (in the caller's transaction); the record of what
    ``scout db perf`` aims at."""
    s = Seeding(conn, counts, tag, progress)
    write_users(s)
    write_campaigns(s)
    write_jobs(s)
    write_stored_creators(s)
    write_usage_and_system_data(s)
    write_profiles(s)
    write_lists(s)
    s.n_reservations = write_reservations(s)
    return record(s)


def record(s: Seeding) -> dict[str, Any]:
    """The heavy rows and some ordinary ones, for ``scout db perf`` to aim at."""
    ordinary = s.n_users // 2
    ordinary_campaign = s.owners.index(ordinary) if ordinary in s.owners else 0
    return {
        "scale": s.tag,
        "seeded_at": s.now.isoformat(),
        "counts": {
            **{k: v for k, v in s.counts.items() if k != "creators"},
            "scraping_results": s.n_batches,
            "scraping_job_creators": s.n_creators,
            "list_items": sum(s.list_sizes),
            "usage_reservations": s.n_reservations,
        },
        "heavy_user": {
            "id": str(s.user_ids[0]),
            "clerk_id": s.clerk_ids[0],
            "campaigns": s.per_user[0],
        },
        "ordinary_user": {
            "id": str(s.user_ids[ordinary]),
            "clerk_id": s.clerk_ids[ordinary],
            "campaigns": s.per_user[ordinary],
        },
        "stripe_customer_id": s.customers[0],
        "heavy_job": {
            "id": str(s.job_ids[s.heavy_job]),
            "creators": s.heavy_creators,
            "platform": s.job_platform[s.heavy_job],
        },
        "heavy_list": {"id": str(s.list_ids[0]), "items": s.list_sizes[0]},
        "summary_campaign": str(s.campaign_ids[ordinary_campaign]),
        "keyword": KEYWORDS[0],
    }
