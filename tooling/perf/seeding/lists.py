"""Creator profiles, lists (one heavy list) and their items."""

from collections.abc import Iterator
from datetime import timedelta

import orjson

from shared.models.enums import ListBucket, ListPrivacy, ListType

from .state import HEAVY_LIST_SHARE, KEYWORDS, Seeding


def write_profiles(s: Seeding) -> None:
    rng, slug = s.rng, s.slug
    n_profiles = s.n_profiles = s.counts["creator_profiles"]
    ids = s.profile_ids = s.new_id.many(n_profiles)
    followers = s.followers = [
        int(1000 * (1 / (1 - rng.random() * 0.999))) for _ in range(n_profiles)
    ]

    def profiles() -> Iterator[tuple]:
        for p in range(n_profiles):
            platform = ("instagram", "tiktok", "youtube")[p % 3]
            handle = f"seed{slug}_creator{p}"
            yield (
                ids[p], platform, f"ext{slug}_{p}", handle, f"Creator {p}",
                f"https://{platform}.example/{handle}", followers[p],
                f"{rng.random() * 12:.4f}", rng.choice(KEYWORDS),
            )  # fmt: skip

    s.copy(
        "creator_profiles",
        ("id", "platform", "external_id", "handle", "display_name", "url", "followers",
         "engagement_rate", "category"),
        profiles(), n_profiles,
    )  # fmt: skip


def write_lists(s: Seeding) -> None:
    rng, now, n_profiles = s.rng, s.now, s.n_profiles
    n_lists = s.counts["creator_lists"]
    owner = rng.choices(range(s.n_users), cum_weights=s.cum, k=n_lists)
    owner[0] = 0
    list_ids = s.list_ids = s.new_id.many(n_lists)
    n_items = min(s.counts["list_items"], n_lists * n_profiles)
    heavy_items = min(n_profiles, max(1, round(n_items * HEAVY_LIST_SHARE)))
    sizes = [0] * n_lists
    sizes[0] = heavy_items
    for _ in range(n_items - heavy_items):
        sizes[1 + rng.randrange(n_lists - 1) if n_lists > 1 else 0] += 1
    sizes = s.list_sizes = [min(s, n_profiles) for s in sizes]
    members = [rng.sample(range(n_profiles), s) for s in sizes]
    created = [s.user_created[u] + (now - s.user_created[u]) * rng.random() for u in owner]
    followers, user_ids = s.followers, s.user_ids

    def lists() -> Iterator[tuple]:
        types = [t.value for t in ListType]
        for k in range(n_lists):
            yield (
                list_ids[k], user_ids[owner[k]], f"List {k}", rng.choice(types),
                ListPrivacy.private.value, orjson.dumps([rng.choice(KEYWORDS)]).decode(),
                k % 11 == 10, sizes[k], sum(followers[p] for p in members[k]),
                created[k], created[k],
            )  # fmt: skip

    s.copy(
        "creator_lists",
        ("id", "user_id", "name", "type", "privacy", "tags", "is_archived", "creator_count",
         "follower_sum", "created_at", "updated_at"),
        lists(), n_lists,
    )  # fmt: skip

    buckets = [b.value for b in ListBucket]

    def items() -> Iterator[tuple]:
        for k in range(n_lists):
            for position, p in enumerate(members[k]):
                yield (
                    list_ids[k], s.profile_ids[p], position,
                    buckets[position % len(buckets)], user_ids[owner[k]],
                    orjson.dumps({"followers": followers[p]}).decode(),
                    position % 50 == 0, created[k] + timedelta(seconds=position),
                )  # fmt: skip

    s.copy(
        "list_items",
        ("list_id", "creator_id", "position", "bucket", "added_by", "metrics_snapshot",
         "pinned", "created_at"),
        items(), sum(sizes),
    )  # fmt: skip
