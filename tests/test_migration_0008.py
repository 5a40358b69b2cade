"""Migration 0008 carries results stored before it: every creator key row takes its ordinal and
creator from the stored batches (the filter columns follow), and the way back loses nothing."""

import json
import uuid

import psycopg

from shared.db import libpq_url
from tooling import migrate

OLD_CREATORS = [
    # As the workers stored them: the creator key in the creator.
    {"creator_key": "ann", "username": "Ann", "bio": "Yoga", "followers": 1500, "verified": True,
     "emails": ["ann@x.io"]},
    {"creator_key": "bob", "username": "bob", "followers": None},
    # An older seed's spelling: the key only as ``handle``.
    {"handle": "cy", "display_name": "Cy Twombly", "followers": 42},
]  # fmt: skip


def _old_results(conn: psycopg.Connection) -> uuid.UUID:
    """A job with two batches and their key rows, written as revision 0007 stored them."""
    user, campaign, job = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    conn.execute(
        "INSERT INTO users (id, user_id, email) VALUES (%s, 'user_m8', 'm8@x.io')", (user,)
    )
    conn.execute("INSERT INTO campaigns (id, user_id, name) VALUES (%s, %s, 'c')", (campaign, user))
    conn.execute(
        "INSERT INTO scraping_jobs (id, user_id, campaign_id, platform, keywords,"
        " processed_results) VALUES (%s, %s, %s, 'tiktok', '[\"yoga\"]', 3)",
        (job, user, campaign),
    )
    for batch_no, (first, creators) in enumerate([(0, OLD_CREATORS[:2]), (2, OLD_CREATORS[2:])]):
        conn.execute(
            "INSERT INTO scraping_results (job_id, batch_no, first_ordinal, creator_count,"
            " creators) VALUES (%s, %s, %s, %s, %s)",
            (job, batch_no, first, len(creators), json.dumps(creators)),
        )
    for key in ("bob", "cy", "ann"):  # key rows carry no order of their own
        conn.execute(
            "INSERT INTO scraping_job_creators (job_id, platform, creator_key)"
            " VALUES (%s, 'tiktok', %s)",
            (job, key),
        )
    return job


def test_existing_results_are_carried_forward_and_back(scratch_database):
    url = scratch_database()
    migrate.upgrade(url, "0007")
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        job = _old_results(conn)
    migrate.upgrade(url, "0008")
    with psycopg.connect(libpq_url(url)) as conn:
        rows = conn.execute(
            "SELECT ordinal, creator_key, creator ->> 'creator_key', followers, verified,"
            " has_email, search_text FROM scraping_job_creators WHERE job_id = %s ORDER BY ordinal",
            (job,),
        ).fetchall()
    assert rows == [
        (0, "ann", "ann", 1500, True, True, "ann  yoga"),
        (1, "bob", "bob", None, False, False, "bob  "),
        (2, "cy", "cy", 42, False, False, " cy twombly "),
    ]
    migrate.downgrade(url, "0007")
    with psycopg.connect(libpq_url(url)) as conn:
        columns = {
            r[0]
            for r in conn.execute(
                "SELECT column_name FROM information_schema.columns"
                " WHERE table_name = 'scraping_job_creators'"
            )
        }
        batches = conn.execute(
            "SELECT creators FROM scraping_results WHERE job_id = %s ORDER BY batch_no", (job,)
        ).fetchall()
    assert "ordinal" not in columns and "search_text" not in columns
    assert [c for (batch,) in batches for c in batch] == OLD_CREATORS  # untouched both ways
    migrate.upgrade(url, "head")
    assert migrate.drift(url) == []
