"""``scrapecreators``: the ScrapeCreators keyword-search API (api.scrapecreators.com), over HTTP.

Endpoints (header ``x-api-key``), one page per call:
- TikTok    ``GET /v1/tiktok/search/keyword?query=&cursor=&region=`` →
  ``{search_item_list: [{aweme_info: {aweme_id, desc, author{…}, statistics{…}, …}}], cursor, has_more}``
- YouTube   ``GET /v1/youtube/search?query=&continuationToken=`` →
  ``{videos: [{id, url, title, channel{id, title, handle, thumbnail}, viewCountInt, …}], continuationToken}``
- Instagram ``GET /v2/instagram/reels/search?query=`` → ``{reels: [{…, owner{…}}]}`` (one page only)

Profiles (enrichment), one creator per call, normalised in ``profiles.py``:
- TikTok    ``GET /v1/tiktok/profile?handle=``
  (https://github.com/antnmrtnds/imospy/blob/main/scrapecreators-docs/scrape_creators_api_docs.md)
- Instagram ``GET /v1/instagram/profile?handle=``
- YouTube   ``GET /v1/youtube/channel?channelId=`` (``handle`` or ``url`` are accepted too)
  (https://scrapecreators.com/tutorials/how-to-scrape-youtube-channel-with-nodejs)

Timeouts, connection errors, 5xx and 429 are retried a few times within the call (429 honours
``Retry-After``); if they persist the call raises :class:`ProviderUnavailable`, a transient
failure the work queue retries with backoff until the provider is back (the job keeps going,
bounded by its own deadline). Other 4xx and malformed bodies raise :class:`ProviderError`,
which ends the job in ``error``.
"""

import asyncio
import logging
import random
from datetime import UTC, datetime
from typing import Any

import httpx

from shared.models.enums import Platform, SearchType

from ..creators import Content, ContentStats, Creator, creator_key, emails_in
from .base import ProviderError, ProviderUnavailable, SearchPage, SearchQuery
from .profiles import Profile, ProfileQuery, instagram_profile, tiktok_profile, youtube_profile

log = logging.getLogger(__name__)

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})


class ScrapeCreatorsProvider:
    name = "scrapecreators"

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 20.0,  # per HTTP request, not per search
        attempts: int = 3,
        backoff: float = 0.5,
        max_retry_after: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.attempts, self.backoff, self.max_retry_after = attempts, backoff, max_retry_after
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers={"x-api-key": api_key, "accept": "application/json"},
            timeout=httpx.Timeout(timeout),
            transport=transport,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def search(self, query: SearchQuery, cursor: str | None) -> SearchPage:
        if query.search_type != SearchType.keyword:
            raise ProviderError("scrapecreators offers keyword search only, not similar search")
        if query.platform == Platform.tiktok:
            params = {"query": query.term, "cursor": cursor or "0", "region": query.region}
            body = await self._get("/v1/tiktok/search/keyword", params)
            return self._tiktok_page(body, query.term)
        if query.platform == Platform.youtube:
            params = {"query": query.term}
            if cursor:
                params["continuationToken"] = cursor
            body = await self._get("/v1/youtube/search", params)
            return self._youtube_page(body, query.term)
        body = await self._get("/v2/instagram/reels/search", {"query": query.term})
        return self._instagram_page(body, query.term)

    async def profile(self, query: ProfileQuery) -> Profile:
        """One creator's profile from the platform's profile endpoint (same retry rules as
        search: 5xx/429/timeouts retried, then :class:`ProviderUnavailable`; other 4xx, e.g. an
        unknown creator, :class:`ProviderError`)."""
        if query.platform == Platform.tiktok:
            body = await self._get("/v1/tiktok/profile", {"handle": query.handle})
            return tiktok_profile(body, self.name)
        if query.platform == Platform.youtube:
            body = await self._get("/v1/youtube/channel", {"channelId": query.external_id})
            return youtube_profile(body, self.name)
        body = await self._get("/v1/instagram/profile", {"handle": query.handle})
        return instagram_profile(body, self.name)

    # --- HTTP ----------------------------------------------------------------------------

    async def _get(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        last = "no attempt made"
        for attempt in range(1, self.attempts + 1):
            delay = self.backoff * 2 ** (attempt - 1) * (1 + random.random() / 4)
            try:
                response = await self._http.get(path, params=params)
            except httpx.TimeoutException:
                last = f"timed out after {self._http.timeout.read}s"
            except httpx.TransportError as exc:
                last = f"unreachable: {exc!r}"
            else:
                if response.status_code == 200:
                    try:
                        body = response.json()
                    except ValueError:
                        raise ProviderError(f"{path}: response is not JSON") from None
                    if not isinstance(body, dict):
                        raise ProviderError(f"{path}: response is not a JSON object")
                    return body
                last = f"HTTP {response.status_code}: {response.text[:200]}"
                if response.status_code not in RETRYABLE_STATUS:
                    raise ProviderError(f"{path}: {last}")
                if response.status_code == 429:
                    delay = max(delay, self._retry_after(response))
                    if delay > self.max_retry_after:  # not worth holding the item: come back
                        raise ProviderUnavailable(
                            f"{path}: rate limited for {delay:g}s", retry_after=delay
                        )
            log.warning(
                "scraping.provider.retry",
                extra={"provider": self.name, "path": path, "attempt": attempt, "error": last},
            )
            if attempt < self.attempts:
                await asyncio.sleep(delay)
        raise ProviderUnavailable(f"{path}: still failing after {self.attempts} attempts ({last})")

    @staticmethod
    def _retry_after(response: httpx.Response) -> float:
        try:
            return max(0.0, float(response.headers.get("retry-after", "0")))
        except ValueError:
            return 0.0

    # --- normalisation -------------------------------------------------------------------

    def _tiktok_page(self, body: dict[str, Any], term: str) -> SearchPage:
        creators = []
        for item in body.get("search_item_list") or []:
            aweme = (item or {}).get("aweme_info") or {}
            author = aweme.get("author") or {}
            handle = author.get("unique_id")
            if not handle or not aweme.get("aweme_id"):
                continue
            stats = aweme.get("statistics") or {}
            bio = author.get("signature") or ""
            cover = ((aweme.get("video") or {}).get("cover") or {}).get("url_list") or [None]
            avatar = (author.get("avatar_thumb") or {}).get("url_list") or [None]
            creators.append(
                Creator(
                    platform=Platform.tiktok,
                    creator_key=creator_key(handle),
                    external_id=str(author.get("uid") or handle),
                    username=handle,
                    display_name=author.get("nickname"),
                    profile_url=f"https://www.tiktok.com/@{handle}",
                    avatar_url=avatar[0],
                    followers=_int(author.get("follower_count")),
                    verified=bool(author.get("verification_type") or author.get("verified")),
                    bio=bio,
                    emails=emails_in(bio),
                    content=Content(
                        id=str(aweme["aweme_id"]),
                        url=f"https://www.tiktok.com/@{handle}/video/{aweme['aweme_id']}",
                        description=aweme.get("desc") or "",
                        thumbnail=cover[0],
                        statistics=ContentStats(
                            views=_int(stats.get("play_count")) or 0,
                            likes=_int(stats.get("digg_count")) or 0,
                            comments=_int(stats.get("comment_count")) or 0,
                            shares=_int(stats.get("share_count")) or 0,
                        ),
                        posted_at=_epoch(aweme.get("create_time")),
                    ),
                    hashtags=[
                        t["hashtag_name"]
                        for t in aweme.get("text_extra") or []
                        if isinstance(t, dict) and t.get("hashtag_name")
                    ],
                    keyword=term,
                    source=self.name,
                )
            )
        more = bool(body.get("has_more")) and body.get("cursor") is not None
        return SearchPage(creators, str(body["cursor"]) if more else None)

    def _youtube_page(self, body: dict[str, Any], term: str) -> SearchPage:
        creators = []
        for video in body.get("videos") or []:
            channel = (video or {}).get("channel") or {}
            channel_id = channel.get("id")
            if not channel_id or not video.get("id"):
                continue
            handle = (channel.get("handle") or channel.get("title") or channel_id).lstrip("@")
            creators.append(
                Creator(
                    platform=Platform.youtube,
                    creator_key=creator_key(channel_id),
                    external_id=channel_id,
                    username=handle,
                    display_name=channel.get("title"),
                    profile_url=f"https://www.youtube.com/channel/{channel_id}",
                    avatar_url=channel.get("thumbnail"),
                    content=Content(
                        id=video["id"],
                        url=video.get("url"),
                        description=video.get("title") or "",
                        thumbnail=video.get("thumbnail"),
                        statistics=ContentStats(views=_int(video.get("viewCountInt")) or 0),
                        duration_seconds=_int(video.get("lengthSeconds")),
                    ),
                    keyword=term,
                    source=self.name,
                )
            )
        return SearchPage(creators, body.get("continuationToken") or None)

    def _instagram_page(self, body: dict[str, Any], term: str) -> SearchPage:
        creators = []
        for reel in body.get("reels") or []:
            owner = (reel or {}).get("owner") or {}
            username = owner.get("username")
            if not username:
                continue
            code = reel.get("shortcode") or str(reel.get("id") or "")
            creators.append(
                Creator(
                    platform=Platform.instagram,
                    creator_key=creator_key(username),
                    external_id=str(owner.get("id") or username),
                    username=username,
                    display_name=owner.get("full_name"),
                    profile_url=f"https://www.instagram.com/{username}/",
                    avatar_url=owner.get("profile_pic_url"),
                    followers=_int(owner.get("follower_count")),
                    verified=bool(owner.get("is_verified")),
                    content=Content(
                        id=code,
                        url=reel.get("url") or f"https://www.instagram.com/reel/{code}/",
                        description=reel.get("caption") or "",
                        thumbnail=reel.get("thumbnail_src"),
                        statistics=ContentStats(
                            views=_int(reel.get("video_view_count")) or 0,
                            likes=_int(reel.get("like_count")) or 0,
                            comments=_int(reel.get("comment_count")) or 0,
                        ),
                        posted_at=_epoch(reel.get("taken_at")),
                    ),
                    keyword=term,
                    source=self.name,
                )
            )
        return SearchPage(creators, None)  # the reels search has no continuation


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _epoch(value: Any) -> datetime | None:
    seconds = _int(value)
    return datetime.fromtimestamp(seconds, UTC) if seconds else None
