"""A local fake of the ScrapeCreators API on a real socket, so the real HTTP adapter runs.

Serves the three keyword-search endpoints and the three profile endpoints with deterministic data (a term written ``<text>:<n>``
holds ``n`` videos, else ``default_supply``; every fifth video repeats an earlier author, as real
search results do), checks ``x-api-key``, records every request, and plays scripted faults:
``fake.script(Fault(status=503), Fault(delay=1.0), Fault(status=429, retry_after=0), Fault(garbage=True))``
applies one fault per incoming request, in order, before answering normally again.

Profiles: a creator whose handle (or channel id) starts with ``missing`` is unknown (404); any
other has the figures of :func:`profile_figures`, so tests can compute what the adapter must
report.
"""

import asyncio
import re
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from .http import serving

_SIZED = re.compile(r"^(?P<text>.*):(?P<n>\d+)$")


@dataclass(frozen=True)
class Fault:
    status: int | None = None  # answer with this status (and a JSON error body)
    retry_after: float | None = None  # with a Retry-After header
    delay: float = 0.0  # wait this long first (then answer normally unless status is set)
    garbage: bool = False  # answer 200 with a body that is not JSON


def profile_figures(name: str) -> dict[str, int]:
    """A creator's figures, derived from its handle or channel id."""
    n = sum(ord(ch) for ch in name)
    return {"followers": 10_000 + n, "following": n % 500, "posts": 100 + n % 50}


class _Profiles:
    """The three profile endpoints (mixed into the fake)."""

    async def _gate(self, request: Request) -> Response | None:  # provided by the fake
        raise NotImplementedError

    @staticmethod
    def _unknown(name: str) -> Response | None:
        if name.startswith("missing"):
            return JSONResponse({"success": False, "message": "user not found"}, 404)
        return None

    async def _tiktok_profile(self, request: Request) -> Response:
        if (denied := await self._gate(request)) is not None:
            return denied
        handle = request.query_params["handle"]
        if (unknown := self._unknown(handle)) is not None:
            return unknown
        f = profile_figures(handle)
        return JSONResponse(
            {
                "user": {
                    "id": f"68{len(handle):017d}",
                    "uniqueId": handle,
                    "nickname": handle.title(),
                    "signature": f"Collabs: {handle}@mail.test",
                    "verified": True,
                    "bioLink": {"link": f"https://links.test/{handle}"},
                },
                "stats": {
                    "followerCount": f["followers"],
                    "followingCount": f["following"],
                    "heartCount": f["posts"] * 500,
                    "videoCount": f["posts"],
                },
            }
        )

    async def _instagram_profile(self, request: Request) -> Response:
        if (denied := await self._gate(request)) is not None:
            return denied
        handle = request.query_params["handle"]
        if (unknown := self._unknown(handle)) is not None:
            return unknown
        f = profile_figures(handle)
        posts = [
            {"node": {"edge_liked_by": {"count": 300}, "edge_media_to_comment": {"count": 20},
                      "video_view_count": 4_000}},
            {"node": {"edge_liked_by": {"count": 100}, "edge_media_to_comment": {"count": 0}}},
        ]  # fmt: skip
        return JSONResponse(
            {
                "success": True,
                "data": {
                    "user": {
                        "id": "9001",
                        "username": handle,
                        "biography": "Photos and reels",
                        "business_email": f"{handle}@brand.test",
                        "external_url": f"https://{handle}.test",
                        "bio_links": [{"url": f"https://{handle}.test"}, {"url": "https://x.test"}],
                        "category_name": "Photographer",
                        "is_verified": False,
                        "edge_followed_by": {"count": f["followers"]},
                        "edge_follow": {"count": f["following"]},
                        "edge_owner_to_timeline_media": {"count": f["posts"], "edges": posts},
                    }
                },
            }
        )

    async def _youtube_channel(self, request: Request) -> Response:
        if (denied := await self._gate(request)) is not None:
            return denied
        channel = request.query_params["channelId"]
        if (unknown := self._unknown(channel)) is not None:
            return unknown
        f = profile_figures(channel)
        return JSONResponse(
            {
                "channelId": channel,
                "name": f"Channel {channel}",
                "description": "Reviews every week. Business: yt@channel.test",
                "subscriberCount": f["followers"],
                "videoCount": f["posts"],
                "viewCount": f["posts"] * 2_500,
                "links": ["https://channel.test", {"url": "https://shop.test"}],
            }
        )


class FakeScrapeCreators(_Profiles):
    def __init__(self, *, api_key: str = "test-key", per_page: int = 10, default_supply: int = 35):
        self.api_key, self.per_page, self.default_supply = api_key, per_page, default_supply
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.always: Fault | None = None  # a fault applied to every request (an outage)
        self._faults: deque[Fault] = deque()
        self.app = Starlette(
            routes=[
                Route("/v1/tiktok/search/keyword", self._tiktok),
                Route("/v1/youtube/search", self._youtube),
                Route("/v2/instagram/reels/search", self._instagram),
                Route("/v1/tiktok/profile", self._tiktok_profile),
                Route("/v1/instagram/profile", self._instagram_profile),
                Route("/v1/youtube/channel", self._youtube_channel),
            ]
        )

    def script(self, *faults: Fault) -> None:
        self._faults.extend(faults)

    def supply(self, term: str) -> int:
        sized = _SIZED.match(term)
        return int(sized["n"]) if sized else self.default_supply

    def author(self, term: str, j: int) -> int:
        """The author index of video ``j``: every fifth video repeats the one five before."""
        return j - 4 if j % 5 == 4 else j

    # --- plumbing ------------------------------------------------------------------------

    async def _gate(self, request: Request) -> Response | None:
        self.requests.append((request.url.path, dict(request.query_params)))
        if request.headers.get("x-api-key") != self.api_key:
            return JSONResponse({"success": False, "message": "Invalid API key"}, 401)
        fault = self._faults.popleft() if self._faults else self.always
        if fault is None:
            return None
        if fault.delay:
            await asyncio.sleep(fault.delay)
        if fault.garbage:
            return PlainTextResponse("<html>upstream hiccup</html>", 200)
        if fault.status:
            headers = (
                {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
            )
            return JSONResponse(
                {"success": False, "message": "fault"}, fault.status, headers=headers
            )
        return None

    def _window(self, term: str, start: int) -> range:
        return range(start, min(self.supply(term), start + self.per_page))

    # --- endpoints -----------------------------------------------------------------------

    async def _tiktok(self, request: Request) -> Response:
        if (denied := await self._gate(request)) is not None:
            return denied
        term = request.query_params["query"]
        start = int(request.query_params.get("cursor") or 0)
        items = []
        for j in self._window(term, start):
            a = self.author(term, j)
            items.append(
                {
                    "type": 1,
                    "aweme_info": {
                        "aweme_id": f"73{j:017d}",
                        "desc": f"{term} video {j} #{term.split(':')[0]}",
                        "create_time": 1_735_689_600 + j * 3600,
                        "author": {
                            "uid": f"68{a:017d}",
                            "unique_id": f"TT_{term.split(':')[0]}_{a}",
                            "nickname": f"Creator {a}",
                            "signature": f"Brand deals: c{a}@mail.test" if a % 2 else "hi",
                            "follower_count": 1000 * (a + 1),
                            "verification_type": a % 3 == 0,
                            "avatar_thumb": {"url_list": [f"https://cdn.test/a/{a}.jpg"]},
                        },
                        "statistics": {
                            "play_count": 10_000 + j,
                            "digg_count": 500 + j,
                            "comment_count": 20 + j,
                            "share_count": j,
                        },
                        "text_extra": [{"type": 1, "hashtag_name": term.split(":")[0]}],
                        "video": {"cover": {"url_list": [f"https://cdn.test/v/{j}.jpg"]}},
                    },
                }
            )
        end = start + len(items)
        more = end < self.supply(term)
        return JSONResponse(
            {"success": True, "search_item_list": items, "cursor": end, "has_more": int(more)}
        )

    async def _youtube(self, request: Request) -> Response:
        if (denied := await self._gate(request)) is not None:
            return denied
        term = request.query_params["query"]
        token = request.query_params.get("continuationToken")
        start = int(token.removeprefix("page-")) * self.per_page if token else 0
        videos = []
        for j in self._window(term, start):
            a = self.author(term, j)
            videos.append(
                {
                    "type": "video",
                    "id": f"yt{j:09d}",
                    "url": f"https://www.youtube.com/watch?v=yt{j:09d}",
                    "title": f"{term} video {j}",
                    "thumbnail": f"https://i.ytimg.test/{j}.jpg",
                    "channel": {
                        "id": f"UC{a:022d}",
                        "title": f"Channel {a}",
                        "handle": f"@chan{a}",
                        "thumbnail": f"https://yt3.test/{a}.jpg",
                    },
                    "viewCountInt": 1000 * (j + 1),
                    "lengthSeconds": 300,
                }
            )
        body: dict = {"videos": videos}
        page = start // self.per_page
        if start + len(videos) < self.supply(term):
            body["continuationToken"] = f"page-{page + 1}"
        return JSONResponse(body)

    async def _instagram(self, request: Request) -> Response:
        if (denied := await self._gate(request)) is not None:
            return denied
        term = request.query_params["query"]
        reels = []
        for j in self._window(term, 0):
            a = self.author(term, j)
            reels.append(
                {
                    "id": str(3_000_000 + j),
                    "shortcode": f"Reel{j:07d}",
                    "caption": f"{term} reel {j}",
                    "thumbnail_src": f"https://ig.test/{j}.jpg",
                    "video_view_count": 2000 + j,
                    "like_count": 100 + j,
                    "comment_count": j,
                    "taken_at": 1_735_689_600 + j,
                    "owner": {
                        "id": str(9_000 + a),
                        "username": f"ig_{a}",
                        "full_name": f"Insta {a}",
                        "is_verified": False,
                        "profile_pic_url": f"https://ig.test/p/{a}.jpg",
                    },
                }
            )
        return JSONResponse({"success": True, "reels": reels})


@asynccontextmanager
async def fake_scrapecreators(**kwargs) -> AsyncIterator[tuple[FakeScrapeCreators, str]]:
    """Serve a fake on a free port; yields ``(fake, base_url)``."""
    fake = FakeScrapeCreators(**kwargs)
    async with serving(fake.app) as client:
        yield fake, str(client.base_url).rstrip("/")
