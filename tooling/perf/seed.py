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
import random
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import psycopg

from shared.db import libpq_url
from shared.models.enums import (
    CampaignStatus,
    JobStatus,
    ListBucket,
    ListPrivacy,
    ListType,
    OnboardingStep,
    PlanKey,
    Platform,
)
from shared.models.scraping import RESULT_BATCH_MAX

SEED_CATEGORY = "seed"
ADVISORY_LOCK = 0x5C0075EED  # one seeder at a time per database
# Per-scale-1 row counts (SPEC/issue 9).
BASE = {
    "users": 10_000,
    "campaigns": 100_000,
    "scraping_jobs": 200_000,
    "creators": 1_000_000,
    "creator_profiles": 50_000,
    "creator_lists": 20_000,
    "list_items": 100_000,
}
HEAVY_JOB_SHARE = 0.10  # of all stored creators, in one job
HEAVY_LIST_SHARE = 0.10  # of all list items, in one list
ZIPF_EXPONENT = 1.0

KEYWORDS = [
    "fitness",
    "beauty",
    "fashion",
    "travel",
    "food",
    "gaming",
    "tech",
    "music",
    "comedy",
    "dance",
    "skincare",
    "makeup",
    "yoga",
    "running",
    "cycling",
    "hiking",
    "vegan",
    "keto",
    "parenting",
    "pets",
    "dogs",
    "cats",
    "diy",
    "home",
    "decor",
    "interior",
    "gardening",
    "photography",
    "art",
    "design",
    "crypto",
    "finance",
    "investing",
    "startup",
    "marketing",
    "education",
    "language",
    "books",
    "movies",
    "anime",
    "esports",
    "cars",
    "motorcycles",
    "football",
    "basketball",
    "tennis",
    "golf",
    "surfing",
    "skateboarding",
    "climbing",
    "wellness",
    "meditation",
    "nutrition",
    "baking",
    "coffee",
    "wine",
]
AUDIENCE_KEYS = ("targetAudience", "ageRange", "minFollowers", "language", "excludeBrands")
INDUSTRIES = ("apparel", "beauty", "fitness", "food", "tech", "travel", "finance", "gaming")


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


class _Ids:
    """Deterministic UUIDs from the scale's RNG."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def __call__(self) -> uuid.UUID:
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)

    def many(self, n: int) -> list[uuid.UUID]:
        return [self() for _ in range(n)]


def _zipf_cum(n: int) -> list[float]:
    total, cum = 0.0, []
    for i in range(n):
        total += 1.0 / (i + 1) ** ZIPF_EXPONENT
        cum.append(total)
    return cum


Progress = Callable[[str, int, int], None]  # (table, rows just written, rows planned)


def _copy(
    cur: psycopg.Cursor,
    table: str,
    columns: Sequence[str],
    rows: Iterator[Sequence[Any]],
    planned: int,
    progress: Progress,
    step: int = 5000,
) -> int:
    written = 0
    with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
            written += 1
            if written % step == 0:
                progress(table, step, planned)
    progress(table, written % step, planned)
    return written


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
            record = _write(conn, scale, tag, report)
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
            for table in (
                *("users", "user_subscriptions", "user_billing", "user_usage", "user_system_data"),
                *("campaigns", "scraping_jobs", "scraping_results", "scraping_job_creators"),
                *("creator_profiles", "creator_lists", "list_items"),
            ):
                conn.execute(f"VACUUM (ANALYZE) {table}")
    return SeedResult(scale=tag, created=True, record=record)


def _write(conn: psycopg.Connection, scale: float, tag: str, progress: Progress) -> dict[str, Any]:
    counts = plan_counts(scale)
    rng = random.Random(f"scout-seed:{tag}")
    new_id = _Ids(rng)
    now = datetime.now(UTC).replace(microsecond=0)
    slug = tag.replace(".", "p")
    cur = conn.cursor()

    # --- users and their four 1:1 children ------------------------------------------------------
    n_users = counts["users"]
    user_ids = new_id.many(n_users)
    clerk_ids = [f"user_seed{slug}_{i:06d}" for i in range(n_users)]
    user_created = [now - timedelta(days=30 + rng.random() * 700) for _ in range(n_users)]
    customers = [f"cus_seed{slug}_{i:06d}" if i % 10 < 7 else None for i in range(n_users)]
    plans = [p.value for p in PlanKey]

    def users() -> Iterator[tuple]:
        for i in range(n_users):
            completed = i % 8 != 0
            step = OnboardingStep.completed if completed else rng.choice(list(OnboardingStep))
            yield (
                user_ids[i], clerk_ids[i], f"seed{slug}.{i}@example.com", f"Seed User {i}",
                f"Brand {i}", f"A brand that sells {rng.choice(KEYWORDS)} things",
                rng.choice(INDUSTRIES), step.value, i == n_users - 1, user_created[i],
            )  # fmt: skip

    _copy(
        cur, "users",
        ("id", "user_id", "email", "full_name", "business_name", "brand_description", "industry",
         "onboarding_step", "is_admin", "created_at"),
        users(), n_users, progress,
    )  # fmt: skip

    sub_statuses = ("active",) * 5 + ("trialing",) * 2 + ("none", "canceled", "past_due")

    def subscriptions() -> Iterator[tuple]:
        for i in range(n_users):
            status = sub_statuses[i % len(sub_statuses)]
            plan = None if status == "none" else plans[3 + i % 3]
            trial_start = user_created[i] + timedelta(days=1)
            trial_end = trial_start + timedelta(days=7)
            if status == "trialing":
                trial_start = now - timedelta(days=rng.randint(0, 6))
                trial_end = trial_start + timedelta(days=7)
            interval = None if plan is None else ("month" if i % 4 else "year")
            yield (
                user_ids[i], plan, plan, status, trial_start, trial_end, interval,
                None if plan is None else now + timedelta(days=rng.randint(1, 30)),
                "synced" if plan else "pending",
            )  # fmt: skip

    _copy(
        cur, "user_subscriptions",
        ("user_id", "current_plan", "intended_plan", "subscription_status", "trial_start_date",
         "trial_end_date", "billing_interval", "current_period_end", "billing_sync_status"),
        subscriptions(), n_users, progress,
    )  # fmt: skip

    def billing() -> Iterator[tuple]:
        for i in range(n_users):
            has_card = customers[i] is not None
            yield (
                user_ids[i], customers[i],
                f"sub_seed{slug}_{i:06d}" if has_card else None,
                f"{rng.randint(0, 9999):04d}" if has_card else None,
                rng.choice(("visa", "mastercard", "amex")) if has_card else None,
                rng.randint(1, 12) if has_card else None,
                rng.randint(2027, 2031) if has_card else None,
                "US" if has_card else None,
            )  # fmt: skip

    _copy(
        cur, "user_billing",
        ("user_id", "stripe_customer_id", "stripe_subscription_id", "card_last4", "card_brand",
         "card_exp_month", "card_exp_year", "billing_address_country"),
        billing(), n_users, progress,
    )  # fmt: skip

    # --- campaigns: owners drawn from a Zipf law (user 0 is the heaviest) ---------------------
    n_campaigns = counts["campaigns"]
    cum = _zipf_cum(n_users)
    owners = rng.choices(range(n_users), cum_weights=cum, k=n_campaigns)
    owners[:n_users] = range(min(n_users, n_campaigns))  # everyone has at least one campaign
    campaign_ids = new_id.many(n_campaigns)
    campaign_created = [user_created[u] + (now - user_created[u]) * rng.random() for u in owners]
    campaign_status = [CampaignStatus.active.value] * 4 + [CampaignStatus.draft.value] * 2
    campaign_status += [CampaignStatus.completed.value] * 3 + [CampaignStatus.archived.value]
    per_user = [0] * n_users
    for u in owners:
        per_user[u] += 1

    def campaigns() -> Iterator[tuple]:
        for c in range(n_campaigns):
            yield (
                campaign_ids[c], user_ids[owners[c]], f"Campaign {c}: {rng.choice(KEYWORDS)}",
                "keyword" if c % 7 else "similar", rng.choice(campaign_status),
                campaign_created[c], campaign_created[c],
            )  # fmt: skip

    _copy(
        cur, "campaigns",
        ("id", "user_id", "name", "search_type", "status", "created_at", "updated_at"),
        campaigns(), n_campaigns, progress,
    )  # fmt: skip

    # --- jobs: spread over campaigns, so heavy users have most of them --------------------------
    n_jobs = counts["scraping_jobs"]
    job_campaign = [j if j < n_campaigns else rng.randrange(n_campaigns) for j in range(n_jobs)]
    job_ids = new_id.many(n_jobs)
    job_created = [
        campaign_created[c] + (now - campaign_created[c]) * rng.random() for c in job_campaign
    ]
    job_platform = [rng.choice(list(Platform)).value for _ in range(n_jobs)]
    keyword_cum = _zipf_cum(len(KEYWORDS))

    # Stored creators: one heavy job (user 0's first campaign), the rest over completed jobs.
    n_creators = counts["creators"]
    heavy_creators = max(RESULT_BATCH_MAX, round(n_creators * HEAVY_JOB_SHARE))
    heavy_job = 0  # job 0 belongs to campaign 0, owned by user 0
    stored = [0] * n_jobs
    stored[heavy_job] = heavy_creators
    left = n_creators - heavy_creators
    candidates = list(range(1, n_jobs))
    rng.shuffle(candidates)
    for j in candidates:
        if left <= 0:
            break
        take = min(left, rng.choice((50, 100, 200, 250, 400, 500, 750, 1000)))
        stored[j] = take
        left -= take

    other = ("completed",) * 6 + ("pending", "processing", "error", "timeout", "cancelled")
    statuses = [
        JobStatus.completed.value if stored[j] else rng.choice(other) for j in range(n_jobs)
    ]
    for j, status in enumerate(statuses):
        if status in ("pending", "processing"):  # live jobs are recent: none is past its timeout
            job_created[j] = now - timedelta(minutes=rng.random() * 20)

    def jobs() -> Iterator[tuple]:
        for j in range(n_jobs):
            status = statuses[j]
            similar = j % 9 == 0
            keywords = None
            if not similar:
                keywords = rng.choices(KEYWORDS, cum_weights=keyword_cum, k=rng.randint(1, 3))
            params: dict[str, Any] = {"platform": job_platform[j], "region": "US"}
            if j % 10 == 0:
                params["targetAudience"] = rng.choice(("gen-z", "millennials", "parents"))
            for key in AUDIENCE_KEYS[1:]:
                if rng.random() < 0.15:
                    params[key] = rng.randint(1, 100)
            live = status in ("pending", "processing")
            done = status not in ("pending", "processing")
            yield (
                job_ids[j], user_ids[owners[job_campaign[j]]], campaign_ids[job_campaign[j]],
                status, job_platform[j], "similar" if similar else "keyword",
                None if keywords is None else orjson.dumps(list(dict.fromkeys(keywords))).decode(),
                f"creator_{j}" if similar else None, orjson.dumps(params).decode(),
                stored[j], max(1, -(-stored[j] // RESULT_BATCH_MAX)) if done else 0,
                1000 if stored[j] > 500 or not stored[j] else 500,
                100 if status == "completed" else (0 if live else 50),
                job_created[j], job_created[j] + timedelta(seconds=5),
                job_created[j] + timedelta(minutes=3) if done else None,
                job_created[j] + timedelta(minutes=30) if live else None,
                "provider error" if status == "error" else None,
            )  # fmt: skip

    _copy(
        cur, "scraping_jobs",
        ("id", "user_id", "campaign_id", "status", "platform", "search_type", "keywords",
         "target_username", "search_params", "processed_results", "processed_runs",
         "target_results", "progress", "created_at", "started_at", "completed_at", "timeout_at",
         "error"),
        jobs(), n_jobs, progress,
    )  # fmt: skip

    def creator_key(j: int, ordinal: int) -> str:
        # A bijection of the ordinal (mod 2^24), so keys are unique within a job but overlap
        # between jobs the way popular creators do.
        return f"creator{(ordinal * 2654435761 + j * 40503) & 0xFFFFFF}"

    def batches() -> Iterator[tuple]:
        for j in range(n_jobs):
            for batch_no, first in enumerate(range(0, stored[j], RESULT_BATCH_MAX)):
                size = min(RESULT_BATCH_MAX, stored[j] - first)
                creators = [
                    {
                        "ordinal": first + k,
                        "handle": creator_key(j, first + k),
                        "platform": job_platform[j],
                        "display_name": f"Creator {first + k}",
                        "followers": 1000 + (first + k) * 37 % 900_000,
                        "engagement_rate": round(0.5 + (first + k) % 97 / 10, 2),
                        "url": f"https://{job_platform[j]}.example/{creator_key(j, first + k)}",
                    }
                    for k in range(size)
                ]
                yield (job_ids[j], batch_no, first, size, orjson.dumps(creators).decode(),
                       job_created[j])  # fmt: skip

    n_batches = sum(-(-s // RESULT_BATCH_MAX) for s in stored)
    _copy(
        cur, "scraping_results",
        ("job_id", "batch_no", "first_ordinal", "creator_count", "creators", "created_at"),
        batches(), n_batches, progress, step=100,
    )  # fmt: skip

    def dedupe() -> Iterator[tuple]:
        for j in range(n_jobs):
            for ordinal in range(stored[j]):
                yield (job_ids[j], job_platform[j], creator_key(j, ordinal))

    _copy(
        cur, "scraping_job_creators", ("job_id", "platform", "creator_key"),
        dedupe(), n_creators, progress, step=20_000,
    )  # fmt: skip

    # --- usage and system data (after campaigns/jobs so the counters are true) -----------------
    creators_by_user = [0] * n_users
    for j in range(n_jobs):
        creators_by_user[owners[job_campaign[j]]] += stored[j]

    def usage() -> Iterator[tuple]:
        for i in range(n_users):
            yield (user_ids[i], per_user[i], min(creators_by_user[i], 2_000_000_000),
                   rng.randint(0, 50), now.replace(day=1, hour=0, minute=0, second=0))  # fmt: skip

    _copy(
        cur, "user_usage",
        ("user_id", "usage_campaigns_current", "usage_creators_current_month",
         "enrichments_current_month", "usage_reset_date"),
        usage(), n_users, progress,
    )  # fmt: skip

    def system_data() -> Iterator[tuple]:
        for i in range(n_users):
            yield (user_ids[i], user_created[i], orjson.dumps({"welcome": "sent"}).decode(),
                   "user.created", user_created[i])  # fmt: skip

    _copy(
        cur, "user_system_data",
        ("user_id", "signup_timestamp", "email_schedule_status", "last_webhook_event",
         "last_webhook_timestamp"),
        system_data(), n_users, progress,
    )  # fmt: skip

    # --- creator profiles, lists and list items ------------------------------------------------
    n_profiles = counts["creator_profiles"]
    profile_ids = new_id.many(n_profiles)
    followers = [int(1000 * (1 / (1 - rng.random() * 0.999))) for _ in range(n_profiles)]

    def profiles() -> Iterator[tuple]:
        for p in range(n_profiles):
            platform = ("instagram", "tiktok", "youtube")[p % 3]
            handle = f"seed{slug}_creator{p}"
            yield (
                profile_ids[p], platform, f"ext{slug}_{p}", handle, f"Creator {p}",
                f"https://{platform}.example/{handle}", followers[p],
                f"{rng.random() * 12:.4f}", rng.choice(KEYWORDS),
            )  # fmt: skip

    _copy(
        cur, "creator_profiles",
        ("id", "platform", "external_id", "handle", "display_name", "url", "followers",
         "engagement_rate", "category"),
        profiles(), n_profiles, progress,
    )  # fmt: skip

    n_lists = counts["creator_lists"]
    list_owner = rng.choices(range(n_users), cum_weights=cum, k=n_lists)
    list_owner[0] = 0
    list_ids = new_id.many(n_lists)
    n_items = min(counts["list_items"], n_lists * n_profiles)
    heavy_items = min(n_profiles, max(1, round(n_items * HEAVY_LIST_SHARE)))
    sizes = [0] * n_lists
    sizes[0] = heavy_items
    for _ in range(n_items - heavy_items):
        sizes[1 + rng.randrange(n_lists - 1) if n_lists > 1 else 0] += 1
    sizes = [min(s, n_profiles) for s in sizes]
    members = [rng.sample(range(n_profiles), s) for s in sizes]
    list_created = [user_created[u] + (now - user_created[u]) * rng.random() for u in list_owner]

    def lists() -> Iterator[tuple]:
        types = [t.value for t in ListType]
        for k in range(n_lists):
            yield (
                list_ids[k], user_ids[list_owner[k]], f"List {k}", rng.choice(types),
                ListPrivacy.private.value, orjson.dumps([rng.choice(KEYWORDS)]).decode(),
                k % 11 == 10, sizes[k], sum(followers[p] for p in members[k]),
                list_created[k], list_created[k],
            )  # fmt: skip

    _copy(
        cur, "creator_lists",
        ("id", "user_id", "name", "type", "privacy", "tags", "is_archived", "creator_count",
         "follower_sum", "created_at", "updated_at"),
        lists(), n_lists, progress,
    )  # fmt: skip

    buckets = [b.value for b in ListBucket]

    def items() -> Iterator[tuple]:
        for k in range(n_lists):
            for position, p in enumerate(members[k]):
                yield (
                    list_ids[k], profile_ids[p], position, buckets[position % len(buckets)],
                    user_ids[list_owner[k]], orjson.dumps({"followers": followers[p]}).decode(),
                    position % 50 == 0, list_created[k] + timedelta(seconds=position),
                )  # fmt: skip

    _copy(
        cur, "list_items",
        ("list_id", "creator_id", "position", "bucket", "added_by", "metrics_snapshot", "pinned",
         "created_at"),
        items(), sum(sizes), progress,
    )  # fmt: skip

    # What `scout db perf` aims at: the heavy rows and some ordinary ones.
    ordinary = n_users // 2
    ordinary_campaign = owners.index(ordinary) if ordinary in owners else 0
    return {
        "scale": tag,
        "seeded_at": now.isoformat(),
        "counts": {
            **{k: v for k, v in counts.items() if k != "creators"},
            "scraping_results": n_batches,
            "scraping_job_creators": n_creators,
            "list_items": sum(sizes),
        },
        "heavy_user": {"id": str(user_ids[0]), "clerk_id": clerk_ids[0], "campaigns": per_user[0]},
        "ordinary_user": {
            "id": str(user_ids[ordinary]),
            "clerk_id": clerk_ids[ordinary],
            "campaigns": per_user[ordinary],
        },
        "stripe_customer_id": customers[0],
        "heavy_job": {"id": str(job_ids[heavy_job]), "creators": heavy_creators},
        "heavy_list": {"id": str(list_ids[0]), "items": sizes[0]},
        "summary_campaign": str(campaign_ids[ordinary_campaign]),
        "keyword": KEYWORDS[0],
        "search_param_key": AUDIENCE_KEYS[0],
    }
