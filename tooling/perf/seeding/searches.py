"""Campaigns (owners drawn from a Zipf law), their jobs, and the jobs' stored creators."""

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import orjson

from shared.models.enums import CampaignStatus, JobStatus, Platform
from shared.models.scraping import RESULT_BATCH_MAX

from .state import AUDIENCE_KEYS, HEAVY_JOB_SHARE, KEYWORDS, Seeding, zipf_cum

# Live jobs were created in the last LIVE_MINUTES, at most as many per user as
# ``rate_limit_job_creates_per_minute`` (30 by default) lets one user create in that time.
LIVE_MINUTES = 20
MAX_LIVE_PER_USER = 30 * LIVE_MINUTES


def creator_key(j: int, ordinal: int) -> str:
    """A bijection of the ordinal (mod 2^24): keys are unique within a job but overlap between
    jobs the way popular creators do."""
    return f"creator{(ordinal * 2654435761 + j * 40503) & 0xFFFFFF}"


def write_campaigns(s: Seeding) -> None:
    rng, now, n_users = s.rng, s.now, s.n_users
    n_campaigns = s.n_campaigns = s.counts["campaigns"]
    s.cum = zipf_cum(n_users)
    owners = s.owners = rng.choices(range(n_users), cum_weights=s.cum, k=n_campaigns)
    owners[:n_users] = range(min(n_users, n_campaigns))  # everyone has at least one campaign
    ids = s.campaign_ids = s.new_id.many(n_campaigns)
    created = s.campaign_created = [
        s.user_created[u] + (now - s.user_created[u]) * rng.random() for u in owners
    ]
    statuses = [CampaignStatus.active.value] * 4 + [CampaignStatus.draft.value] * 2
    statuses += [CampaignStatus.completed.value] * 3 + [CampaignStatus.archived.value]
    s.per_user = [0] * n_users
    for u in owners:
        s.per_user[u] += 1

    def campaigns() -> Iterator[tuple]:
        for c in range(n_campaigns):
            yield (
                ids[c], s.user_ids[owners[c]], f"Campaign {c}: {rng.choice(KEYWORDS)}",
                "keyword" if c % 7 else "similar", rng.choice(statuses),
                created[c], created[c],
            )  # fmt: skip

    s.copy(
        "campaigns",
        ("id", "user_id", "name", "search_type", "status", "created_at", "updated_at"),
        campaigns(), n_campaigns,
    )  # fmt: skip


def write_jobs(s: Seeding) -> None:
    rng, now, n_campaigns = s.rng, s.now, s.n_campaigns
    n_jobs = s.n_jobs = s.counts["scraping_jobs"]
    job_campaign = s.job_campaign = [
        j if j < n_campaigns else rng.randrange(n_campaigns) for j in range(n_jobs)
    ]
    job_ids = s.job_ids = s.new_id.many(n_jobs)
    created = s.job_created = [
        s.campaign_created[c] + (now - s.campaign_created[c]) * rng.random() for c in job_campaign
    ]
    platform = s.job_platform = [rng.choice(list(Platform)).value for _ in range(n_jobs)]
    keyword_cum = zipf_cum(len(KEYWORDS))

    # Stored creators: one heavy job (user 0's first campaign), the rest over completed jobs.
    n_creators = s.n_creators = s.counts["creators"]
    s.heavy_creators = max(RESULT_BATCH_MAX, round(n_creators * HEAVY_JOB_SHARE))
    s.heavy_job = 0  # job 0 belongs to campaign 0, owned by user 0
    stored = s.stored = [0] * n_jobs
    stored[s.heavy_job] = s.heavy_creators
    left = n_creators - s.heavy_creators
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
    # Live jobs are recent (none past its timeout), and no user has more than job creation's
    # rate limit lets one start in that time; the others have ended.
    live_of = [0] * s.n_users
    ended = ("error", "timeout", "cancelled")
    for j, status in enumerate(statuses):
        if status in ("pending", "processing"):
            owner = s.owners[job_campaign[j]]
            if live_of[owner] >= MAX_LIVE_PER_USER:
                statuses[j] = ended[j % len(ended)]
                continue
            live_of[owner] += 1
            created[j] = now - timedelta(minutes=rng.random() * LIVE_MINUTES)

    def jobs() -> Iterator[tuple]:
        for j in range(n_jobs):
            status = statuses[j]
            similar = j % 9 == 0
            keywords = None
            if not similar:
                keywords = rng.choices(KEYWORDS, cum_weights=keyword_cum, k=rng.randint(1, 3))
            params: dict[str, Any] = {"platform": platform[j], "region": "US"}
            if j % 10 == 0:
                params["targetAudience"] = rng.choice(("gen-z", "millennials", "parents"))
            for key in AUDIENCE_KEYS[1:]:
                if rng.random() < 0.15:
                    params[key] = rng.randint(1, 100)
            live = status in ("pending", "processing")
            done = not live
            yield (
                job_ids[j], s.user_ids[s.owners[job_campaign[j]]],
                s.campaign_ids[job_campaign[j]], status, platform[j],
                "similar" if similar else "keyword",
                None if keywords is None else orjson.dumps(list(dict.fromkeys(keywords))).decode(),
                f"creator_{j}" if similar else None, orjson.dumps(params).decode(),
                stored[j], max(1, -(-stored[j] // RESULT_BATCH_MAX)) if done else 0,
                1000 if stored[j] > 500 or not stored[j] else 500,
                100 if status == "completed" else (0 if live else 50),
                created[j], created[j] + timedelta(seconds=5),
                created[j] + timedelta(minutes=3) if done else None,
                created[j] + timedelta(minutes=30) if live else None,
                "provider error" if status == "error" else None,
            )  # fmt: skip

    s.copy(
        "scraping_jobs",
        ("id", "user_id", "campaign_id", "status", "platform", "search_type", "keywords",
         "target_username", "search_params", "processed_results", "processed_runs",
         "target_results", "progress", "created_at", "started_at", "completed_at",
         "timeout_at", "error"),
        jobs(), n_jobs,
    )  # fmt: skip


def seeded_creator(j: int, ordinal: int, platform: str) -> dict[str, Any]:
    """The ``ordinal``-th creator of job ``j``, in the shape Scout stores: about one in eight
    verified, one in five with an e-mail, follower counts spread over 1k to 901k."""
    key = creator_key(j, ordinal)
    email = ordinal % 5 == 0
    return {
        "ordinal": ordinal,
        "platform": platform,
        "creator_key": key,
        "external_id": key,
        "username": key,
        "display_name": f"Creator {ordinal}",
        "profile_url": f"https://{platform}.example/{key}",
        "followers": 1000 + ordinal * 37 % 900_000,
        "verified": ordinal % 8 == 0,
        "bio": f"{KEYWORDS[ordinal % len(KEYWORDS)]} creator"
        + (f", contact {key}@mail.example" if email else ""),
        "emails": [f"{key}@mail.example"] if email else [],
        "engagement_rate": round(0.5 + ordinal % 97 / 10, 2),
        "source": "seed",
        "synthetic": True,
    }


def write_stored_creators(s: Seeding) -> None:
    """The jobs' creators: bounded result batches, and one row per creator (its dedupe key,
    ordinal and the creator again, whose filter columns Postgres generates)."""
    stored, job_ids, platform = s.stored, s.job_ids, s.job_platform

    def batches() -> Iterator[tuple]:
        for j in range(s.n_jobs):
            for batch_no, first in enumerate(range(0, stored[j], RESULT_BATCH_MAX)):
                size = min(RESULT_BATCH_MAX, stored[j] - first)
                creators = [seeded_creator(j, first + k, platform[j]) for k in range(size)]
                yield (job_ids[j], batch_no, first, size, orjson.dumps(creators).decode(),
                       s.job_created[j])  # fmt: skip

    s.n_batches = sum(-(-s // RESULT_BATCH_MAX) for s in stored)
    s.copy(
        "scraping_results",
        ("job_id", "batch_no", "first_ordinal", "creator_count", "creators", "created_at"),
        batches(), s.n_batches, step=100,
    )  # fmt: skip

    def rows() -> Iterator[tuple]:
        for j in range(s.n_jobs):
            for ordinal in range(stored[j]):
                creator = seeded_creator(j, ordinal, platform[j])
                yield (job_ids[j], platform[j], creator["creator_key"], ordinal,
                       orjson.dumps(creator).decode())  # fmt: skip

    s.copy(
        "scraping_job_creators", ("job_id", "platform", "creator_key", "ordinal", "creator"),
        rows(), s.n_creators, step=20_000,
    )  # fmt: skip
