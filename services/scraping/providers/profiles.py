"""The enriched profile every provider's profile endpoint normalises to, and the ScrapeCreators
normalisers (one per platform: the three profile endpoints answer three different shapes).

Engagement rate is in percent of followers: the average interactions (likes + comments) of a
post over the follower count, from the figures the endpoint gives (recent posts on Instagram,
lifetime likes over videos on TikTok; YouTube's channel endpoint gives none, so it stays null).
"""

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field

from shared.models.enums import Platform

from ..creators import emails_in

MAX_LINKS = 20


@dataclass(frozen=True)
class ProfileQuery:
    """Which creator to enrich: the platform's creator id and its handle (endpoints differ in
    which one they take)."""

    platform: Platform
    external_id: str
    handle: str


class Profile(BaseModel):
    """A creator's enriched profile as a provider answers it (``enriched_at`` is added when it
    is stored)."""

    bio: str = ""
    emails: list[str] = Field(default_factory=list)
    followers: int | None = None
    following: int | None = None
    posts: int | None = None
    engagement_rate: float | None = None
    avg_views: int | None = None
    links: list[str] = Field(default_factory=list)
    category: str | None = None
    verified: bool = False
    source: str
    synthetic: bool = False


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _rate(interactions: float | None, followers: int | None) -> float | None:
    if interactions is None or not followers:
        return None
    return round(100.0 * interactions / followers, 4)


def _links(*candidates: Any) -> list[str]:
    seen: dict[str, None] = {}
    for link in candidates:
        if isinstance(link, str) and link.strip():
            seen.setdefault(link.strip(), None)
    return list(seen)[:MAX_LINKS]


def _emails(*texts: Any) -> list[str]:
    seen: dict[str, None] = {}
    for text in texts:
        for email in emails_in(text if isinstance(text, str) else None):
            seen.setdefault(email, None)
    return list(seen)


def tiktok_profile(body: dict[str, Any], source: str) -> Profile:
    """``GET /v1/tiktok/profile?handle=`` → ``{user: {signature, verified, bioLink{link}, …},
    stats: {followerCount, followingCount, heartCount, videoCount}}``.

    https://github.com/antnmrtnds/imospy/blob/main/scrapecreators-docs/scrape_creators_api_docs.md
    """
    user = body.get("user") or {}
    stats = body.get("stats") or body.get("statsV2") or {}
    followers, videos = _int(stats.get("followerCount")), _int(stats.get("videoCount"))
    hearts = _int(stats.get("heartCount") or stats.get("heart"))
    per_video = hearts / videos if hearts is not None and videos else None
    bio = user.get("signature") or ""
    return Profile(
        bio=bio,
        emails=_emails(bio),
        followers=followers,
        following=_int(stats.get("followingCount")),
        posts=videos,
        engagement_rate=_rate(per_video, followers),
        links=_links((user.get("bioLink") or {}).get("link")),
        category=user.get("category") or None,
        verified=bool(user.get("verified")),
        source=source,
    )


def instagram_profile(body: dict[str, Any], source: str) -> Profile:
    """``GET /v1/instagram/profile?handle=`` → ``{data: {user: {biography, bio_links[{url}],
    external_url, business_email, category_name, is_verified, edge_followed_by{count},
    edge_follow{count}, edge_owner_to_timeline_media{count, edges[{node{…}}]}}}}``."""
    user = (body.get("data") or {}).get("user") or {}
    followers = _int((user.get("edge_followed_by") or {}).get("count"))
    media = user.get("edge_owner_to_timeline_media") or {}
    nodes = [(e or {}).get("node") or {} for e in media.get("edges") or []]
    interactions = [
        (_int((n.get("edge_liked_by") or {}).get("count")) or 0)
        + (_int((n.get("edge_media_to_comment") or {}).get("count")) or 0)
        for n in nodes
    ]
    views = [v for n in nodes if (v := _int(n.get("video_view_count"))) is not None]
    bio = user.get("biography") or ""
    return Profile(
        bio=bio,
        emails=_emails(user.get("business_email"), bio),
        followers=followers,
        following=_int((user.get("edge_follow") or {}).get("count")),
        posts=_int(media.get("count")),
        engagement_rate=_rate(
            sum(interactions) / len(interactions) if interactions else None, followers
        ),
        avg_views=sum(views) // len(views) if views else None,
        links=_links(
            user.get("external_url"),
            *((link or {}).get("url") for link in user.get("bio_links") or []),
        ),
        category=user.get("category_name") or None,
        verified=bool(user.get("is_verified")),
        source=source,
    )


def youtube_profile(body: dict[str, Any], source: str) -> Profile:
    """``GET /v1/youtube/channel?channelId=`` → ``{channelId, description, subscriberCount,
    videoCount, viewCount, email, links[…]}`` (links are URLs or ``{url}`` objects).

    https://github.com/GroundCtrlHQ/mattboxing/blob/main/docs/features/SCRAPECREATORS.md
    """
    videos, views = _int(body.get("videoCount")), _int(body.get("viewCount"))
    description = body.get("description") or ""
    links = [link if isinstance(link, str) else (link or {}).get("url")
             for link in body.get("links") or []]  # fmt: skip
    return Profile(
        bio=description,
        emails=_emails(body.get("email"), description),
        followers=_int(body.get("subscriberCount")),
        posts=videos,
        avg_views=views // videos if views is not None and videos else None,
        links=_links(*links),
        category=(body.get("tags") or [None])[0] if isinstance(body.get("tags"), list) else None,
        verified=bool(body.get("verified")),
        source=source,
    )
