"""What every seeding step shares: the scale's RNG, ids, clock and COPY cursor, and the rows
earlier steps decided (later steps build on them: jobs belong to campaigns, usage counts what
was written)."""

import random
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import psycopg

HEAVY_JOB_SHARE = 0.10  # of all stored creators, in one job
HEAVY_LIST_SHARE = 0.10  # of all list items, in one list
ZIPF_EXPONENT = 1.0

KEYWORDS = [
    "fitness", "beauty", "fashion", "travel", "food", "gaming", "tech", "music", "comedy",
    "dance", "skincare", "makeup", "yoga", "running", "cycling", "hiking", "vegan", "keto",
    "parenting", "pets", "dogs", "cats", "diy", "home", "decor", "interior", "gardening",
    "photography", "art", "design", "crypto", "finance", "investing", "startup", "marketing",
    "education", "language", "books", "movies", "anime", "esports", "cars", "motorcycles",
    "football", "basketball", "tennis", "golf", "surfing", "skateboarding", "climbing",
    "wellness", "meditation", "nutrition", "baking", "coffee", "wine",
]  # fmt: skip
AUDIENCE_KEYS = ("targetAudience", "ageRange", "minFollowers", "language", "excludeBrands")
INDUSTRIES = ("apparel", "beauty", "fitness", "food", "tech", "travel", "finance", "gaming")

Progress = Callable[[str, int, int], None]  # (table, rows just written, rows planned)


class Ids:
    """Deterministic UUIDs from the scale's RNG."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def __call__(self) -> uuid.UUID:
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)

    def many(self, n: int) -> list[uuid.UUID]:
        return [self() for _ in range(n)]


def zipf_cum(n: int) -> list[float]:
    """Cumulative Zipf weights for ``n`` ranks (rank 0 the heaviest)."""
    total, cum = 0.0, []
    for i in range(n):
        total += 1.0 / (i + 1) ** ZIPF_EXPONENT
        cum.append(total)
    return cum


class Seeding:
    """One scale being written; each step reads what earlier steps set and adds its own."""

    # users (accounts.write_users)
    n_users: int
    user_ids: list[uuid.UUID]
    clerk_ids: list[str]
    user_created: list[datetime]
    customers: list[str | None]
    # campaigns (searches.write_campaigns)
    n_campaigns: int
    cum: list[float]
    owners: list[int]
    campaign_ids: list[uuid.UUID]
    campaign_created: list[datetime]
    per_user: list[int]
    # jobs and their creators (searches.write_jobs, write_stored_creators)
    n_jobs: int
    job_campaign: list[int]
    job_ids: list[uuid.UUID]
    job_created: list[datetime]
    job_platform: list[str]
    n_creators: int
    heavy_creators: int
    heavy_job: int
    stored: list[int]
    n_batches: int
    # profiles and lists (lists.write_profiles, write_lists)
    n_profiles: int
    profile_ids: list[uuid.UUID]
    followers: list[int]
    list_ids: list[uuid.UUID]
    list_sizes: list[int]
    # settled usage (accounts.write_reservations)
    n_reservations: int

    def __init__(
        self, conn: psycopg.Connection, counts: dict[str, int], tag: str, progress: Progress
    ) -> None:
        self.counts, self.tag, self.progress = counts, tag, progress
        self.rng = random.Random(f"scout-seed:{tag}")
        self.new_id = Ids(self.rng)
        self.now = datetime.now(UTC).replace(microsecond=0)
        self.slug = tag.replace(".", "p")
        self.cur = conn.cursor()

    def copy(
        self,
        table: str,
        columns: Sequence[str],
        rows: Iterator[Sequence[Any]],
        planned: int,
        step: int = 5000,
    ) -> int:
        """COPY ``rows`` into ``table``, reporting progress every ``step`` rows."""
        written = 0
        with self.cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
                written += 1
                if written % step == 0:
                    self.progress(table, step, planned)
        self.progress(table, written % step, planned)
        return written
