"""The one creator shape every provider normalises to, and its per-job dedupe key.

Providers disagree about everything (TikTok's ``unique_id``, YouTube's channel id, Instagram's
username; content ids vs creator ids). Scout stores one shape, keyed by a stable *creator* id —
never a video id, which would make one creator as many creators as videos — lower-cased and
trimmed, the form ``scraping_job_creators.creator_key`` enforces with a CHECK constraint.
"""

import re
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.models.enums import Platform

EMAIL_RE = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}")
MAX_KEY_LENGTH = 255


class ContentStats(BaseModel):
    views: int = 0
    likes: int = 0
    comments: int = 0
    shares: int = 0


class Content(BaseModel):
    """The post/video that surfaced the creator in the search."""

    id: str
    url: str | None = None
    description: str = ""
    thumbnail: str | None = None
    statistics: ContentStats = Field(default_factory=ContentStats)
    posted_at: datetime | None = None
    duration_seconds: int | None = None


class Creator(BaseModel):
    """A normalised creator as stored in ``scraping_results.creators`` and served by the API."""

    model_config = ConfigDict(extra="forbid")

    platform: Platform
    creator_key: str  # the dedupe key: stable creator id/handle, lower-cased and trimmed
    external_id: str  # the platform's creator id (TikTok uid, YouTube channel id, IG user id)
    username: str
    display_name: str | None = None
    profile_url: str | None = None
    avatar_url: str | None = None
    followers: int | None = None
    verified: bool = False
    bio: str = ""
    emails: list[str] = Field(default_factory=list)
    content: Content | None = None
    hashtags: list[str] = Field(default_factory=list)
    keyword: str | None = None  # the search chain (keyword or @username) that found it
    source: str  # provider name, e.g. "synthetic" or "scrapecreators"
    synthetic: bool = False  # True for generated data: never mistake it for real creators

    def stored(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def creator_key(value: str) -> str:
    """Normalise a dedupe key: trimmed, lower-cased, bounded to the column length."""
    return value.strip().lower()[:MAX_KEY_LENGTH]


def emails_in(text: str | None) -> list[str]:
    """E-mail addresses found in a bio, deduplicated, in order of appearance."""
    seen: dict[str, None] = {}
    for match in EMAIL_RE.findall(text or ""):
        seen.setdefault(match.lower(), None)
    return list(seen)
