"""``synthetic``: deterministic, clearly labelled fake creators for offline development and tests.

Everything derives from a SHA-256 of (platform, term, position), so the same search always
returns the same pages. Each term has a finite supply (30 to 300 items, or exactly ``n`` for a term
written ``<text>:<n>``, e.g. ``fitness:0`` finds nobody), so searches exhaust. Some items repeat
the previous one and a small pool of "popular" creators turns up under every term, so per-job
dedupe is exercised. Every creator carries ``synthetic: true`` and ``source: "synthetic"``, and
e-mails use the reserved ``example.com`` domain.

Profiles (enrichment) derive from (platform, external id) the same way; a creator whose external
id starts with ``missing`` does not exist (the provider refuses it for good).
"""

import hashlib
import re
from datetime import UTC, datetime, timedelta

from shared.models.enums import Platform, SearchType

from ..creators import Content, ContentStats, Creator, creator_key, emails_in
from .base import ProviderError, SearchPage, SearchQuery
from .profiles import Profile, ProfileQuery

PAGE_SIZE = 20
POOL = 20_000  # distinct creators per platform
POPULAR = 40  # creators that show up under many terms
MAX_SUPPLY = 2_000
_SIZED = re.compile(r"^(?P<text>.*):(?P<n>\d{1,4})$")
_ADJECTIVES = ("sunny", "urban", "wild", "daily", "tiny", "bold", "happy", "lazy", "golden",
               "cosy", "epic", "fresh", "quiet", "rapid", "vivid", "zen")  # fmt: skip
_NOUNS = ("chef", "runner", "nomad", "gamer", "maker", "coach", "artist", "baker", "rider",
          "diver", "reader", "yogi", "vlogger", "stylist", "builder", "traveler")  # fmt: skip
_EPOCH = datetime(2025, 1, 1, tzinfo=UTC)
_CATEGORIES = ("fitness", "food", "travel", "gaming", "beauty", "tech", "music", "education")


def _h(*parts: object) -> int:
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big")


def supply(term: str) -> int:
    """How many items the synthetic source holds for ``term`` (duplicates included)."""
    sized = _SIZED.match(term.strip())
    if sized:
        return min(int(sized["n"]), MAX_SUPPLY)
    return 30 + _h("supply", term.strip().lower()) % 271


class SyntheticProvider:
    name = "synthetic"

    async def search(self, query: SearchQuery, cursor: str | None) -> SearchPage:
        page = int(cursor or 0)
        term = query.term.strip().lower()
        chain = f"similar:{term}" if query.search_type == SearchType.similar else term
        total = supply(query.term)
        start, end = page * PAGE_SIZE, min(total, (page + 1) * PAGE_SIZE)
        creators = [
            self._creator(query.platform, self._index(query.platform, chain, j), j, query.term)
            for j in range(start, end)
        ]
        return SearchPage(creators, str(page + 1) if end < total else None)

    async def aclose(self) -> None:
        return None

    async def profile(self, query: ProfileQuery) -> Profile:
        if query.external_id.lower().startswith("missing"):
            raise ProviderError(f"no {query.platform} creator {query.external_id!r}")
        h = _h(query.platform, "profile", query.external_id)
        followers = 1_000 + h % 5_000_000
        email = f"{query.handle.lower()}@example.com" if h % 4 != 3 else None
        bio = f"[synthetic] {_NOUNS[(h >> 4) % 16]} on {query.platform}" + (
            f" | contact: {email}" if email else ""
        )
        return Profile(
            bio=bio,
            emails=[email] if email else [],
            followers=followers,
            following=(h >> 12) % 3_000,
            posts=10 + (h >> 20) % 2_000,
            engagement_rate=round(0.5 + ((h >> 28) % 1_500) / 100, 2),
            avg_views=500 + (h >> 36) % 1_000_000,
            links=[f"https://synthetic.invalid/{query.platform}/{query.external_id}"],
            category=_CATEGORIES[(h >> 44) % len(_CATEGORIES)],
            verified=(h >> 50) % 13 == 0,
            source=self.name,
            synthetic=True,
        )

    @staticmethod
    def _index(platform: Platform, chain: str, j: int) -> int:
        if j % 7 == 6:  # a repeat of the previous item: in-page duplicates
            j -= 1
        if j % 11 == 10:  # a popular creator: duplicates across terms
            return _h(platform, "popular", j // 11) % POPULAR
        return POPULAR + _h(platform, chain, j) % (POOL - POPULAR)

    @staticmethod
    def _creator(platform: Platform, i: int, j: int, term: str) -> Creator:
        h = _h(platform, "creator", i)
        handle = f"{_ADJECTIVES[h % 16]}{_NOUNS[(h >> 4) % 16]}{i}"
        followers = 1_000 + (h >> 8) % 5_000_000
        verified = (h >> 40) % 13 == 0
        posted = _EPOCH + timedelta(minutes=(h >> 20) % 500_000)
        stats = ContentStats(
            views=1_000 + (h >> 12) % 2_000_000,
            likes=(h >> 16) % 200_000,
            comments=(h >> 24) % 5_000,
            shares=(h >> 28) % 2_000 if platform == Platform.tiktok else 0,
        )
        tag = re.sub(r"[^a-z0-9]", "", term.lower().split(":")[0]) or "creator"
        email = f"{handle}@example.com" if h % 3 == 0 else None
        if platform == Platform.tiktok:
            external_id, key = str(6_700_000_000_000_000_000 + i), handle
            content_id = str(7_300_000_000_000_000_000 + _h("video", i, j) % 10**17)
            bio = f"[synthetic] {tag} clips daily" + (f" | biz: {email}" if email else "")
            content = Content(
                id=content_id, url=f"https://www.tiktok.com/@{handle}/video/{content_id}",
                description=f"[synthetic] {term} #{tag}", statistics=stats, posted_at=posted,
                duration_seconds=10 + h % 170,
                thumbnail=f"https://synthetic.invalid/tiktok/{content_id}.jpg",
            )  # fmt: skip
            profile_url, hashtags = f"https://www.tiktok.com/@{handle}", [tag]
        elif platform == Platform.instagram:
            external_id, key = str(40_000_000_000 + i), handle
            shortcode = f"C{_h('reel', i, j):x}"[:11]
            bio = ""  # Instagram search results carry no bio; enrichment fills it
            content = Content(
                id=shortcode, url=f"https://www.instagram.com/reel/{shortcode}/",
                description=f"[synthetic] {term}", statistics=stats, posted_at=posted,
                thumbnail=f"https://synthetic.invalid/instagram/{shortcode}.jpg",
            )  # fmt: skip
            profile_url, hashtags = f"https://www.instagram.com/{handle}/", []
        else:
            external_id = f"UC{_h('channel', i):022x}"[:24]
            key = external_id
            video_id = f"{_h('yt', i, j):011x}"[:11]
            bio = ""
            stats = stats.model_copy(update={"likes": 0, "comments": 0})
            content = Content(
                id=video_id, url=f"https://www.youtube.com/watch?v={video_id}",
                description=f"[synthetic] {term}", statistics=stats, posted_at=posted,
                duration_seconds=60 + h % 3_000,
                thumbnail=f"https://synthetic.invalid/youtube/{video_id}.jpg",
            )  # fmt: skip
            profile_url, hashtags = f"https://www.youtube.com/@{handle}", []
        return Creator(
            platform=platform,
            creator_key=creator_key(key),
            external_id=external_id,
            username=handle,
            display_name=f"{handle.title()} (synthetic)",
            profile_url=profile_url,
            avatar_url=f"https://synthetic.invalid/avatars/{platform}/{i}.png",
            followers=followers,
            verified=verified,
            bio=bio,
            emails=emails_in(bio),
            content=content,
            hashtags=hashtags,
            source="synthetic",
            synthetic=True,
        )
