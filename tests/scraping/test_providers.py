"""Providers: the synthetic generator, and the ScrapeCreators adapter against a local fake."""

import time

import pytest

from services.scraping.providers import (
    ProviderError,
    ProviderUnavailable,
    ScrapeCreatorsProvider,
    SearchQuery,
    SyntheticProvider,
)
from shared.events.failures import is_transient

from ..support.fake_provider import Fault, fake_scrapecreators
from ..support.wait import eventually


async def drain(provider, query: SearchQuery):
    cursor, pages, creators = None, 0, []
    while True:
        page = await provider.search(query, cursor)
        pages += 1
        creators.extend(page.creators)
        if page.exhausted:
            return pages, creators
        cursor = page.next_cursor


# --- synthetic -------------------------------------------------------------------------------


async def test_synthetic_is_deterministic_labelled_finite_and_has_duplicates():
    provider = SyntheticProvider()
    query = SearchQuery("tiktok", "keyword", "fitness")
    first = await drain(provider, query)
    again = await drain(provider, query)
    assert [c.model_dump() for c in first[1]] == [c.model_dump() for c in again[1]]
    _, creators = first
    assert 30 <= len(creators) <= 300  # finite
    assert all(c.synthetic and c.source == "synthetic" for c in creators)
    assert all("[synthetic]" in c.bio and c.content.description.startswith("[synthetic]")
               for c in creators)  # fmt: skip
    keys = [c.creator_key for c in creators]
    assert len(set(keys)) < len(keys)  # duplicates to dedupe
    assert all(k == k.strip().lower() for k in keys)


async def test_synthetic_shapes_differ_per_platform_and_sized_terms_fix_the_supply():
    provider = SyntheticProvider()
    _, yt = await drain(provider, SearchQuery("youtube", "keyword", "cooking:25"))
    assert len(yt) == 25
    assert all(c.creator_key.startswith("uc") and c.external_id.startswith("UC") for c in yt)
    assert all(c.content.statistics.likes == 0 and c.bio == "" for c in yt)
    _, ig = await drain(provider, SearchQuery("instagram", "keyword", "cooking:5"))
    assert all("/reel/" in c.content.url for c in ig)
    _, none = await drain(provider, SearchQuery("tiktok", "keyword", "anything:0"))
    assert none == []
    _, similar = await drain(provider, SearchQuery("tiktok", "similar", "somebody:12"))
    assert len(similar) == 12


# --- ScrapeCreators adapter against the fake -------------------------------------------------


async def test_tiktok_keyword_search_pages_with_the_cursor_and_normalises():
    async with fake_scrapecreators(per_page=10) as (fake, url):
        provider = ScrapeCreatorsProvider(url, "test-key")
        try:
            pages, creators = await drain(
                provider, SearchQuery("tiktok", "keyword", "yoga:25", "GB")
            )
        finally:
            await provider.aclose()
    assert pages == 3 and len(creators) == 25
    assert [q["cursor"] for _, q in fake.requests] == ["0", "10", "20"]
    assert all(q["region"] == "GB" and q["query"] == "yoga:25" for _, q in fake.requests)
    first = creators[1]
    assert first.platform == "tiktok" and first.creator_key == "tt_yoga_1"
    assert first.emails == ["c1@mail.test"] and first.followers == 2000
    assert first.content.id == "7300000000000000001" and first.hashtags == ["yoga"]
    assert not first.synthetic and first.source == "scrapecreators"
    assert creators[4].creator_key == creators[0].creator_key  # a repeated author


async def test_youtube_uses_continuation_tokens_and_instagram_is_one_page():
    async with fake_scrapecreators(per_page=10) as (fake, url):
        provider = ScrapeCreatorsProvider(url, "test-key")
        try:
            pages, yt = await drain(provider, SearchQuery("youtube", "keyword", "diy:15"))
            ig_pages, ig = await drain(provider, SearchQuery("instagram", "keyword", "diy:15"))
        finally:
            await provider.aclose()
    assert pages == 2 and len(yt) == 15
    assert fake.requests[1][1]["continuationToken"] == "page-1"
    assert yt[0].creator_key == yt[0].external_id.lower() == "uc" + "0" * 22
    assert ig_pages == 1 and len(ig) == 10 and ig[0].creator_key == "ig_0"


async def test_server_errors_and_rate_limits_are_retried_then_succeed():
    async with fake_scrapecreators() as (fake, url):
        fake.script(Fault(status=503), Fault(status=429, retry_after=0), Fault(garbage=False))
        provider = ScrapeCreatorsProvider(url, "test-key", backoff=0.01)
        try:
            page = await provider.search(SearchQuery("tiktok", "keyword", "x:3"), None)
        finally:
            await provider.aclose()
    assert len(page.creators) == 3
    assert len(fake.requests) == 3


async def test_a_rate_limit_longer_than_we_wait_hands_the_item_back_at_once():
    async with fake_scrapecreators() as (fake, url):
        fake.script(Fault(status=429, retry_after=3600))
        provider = ScrapeCreatorsProvider(url, "test-key", backoff=0.01, max_retry_after=5)
        with pytest.raises(ProviderUnavailable, match="rate limited") as info:
            await provider.search(SearchQuery("tiktok", "keyword", "x"), None)
        await provider.aclose()
    assert len(fake.requests) == 1
    assert is_transient(info.value) and info.value.retry_after == 3600


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        (Fault(delay=1.0), r"still failing after 3 attempts .*timed out"),
        (Fault(status=502), r"still failing after 3 attempts .*HTTP 502"),
    ],
)
async def test_a_provider_that_stays_down_is_a_transient_failure(fault, message):
    """Retried within the call, then handed back as transient: the work queue retries the
    item later instead of ending the job."""
    async with fake_scrapecreators() as (fake, url):
        fake.always = fault
        provider = ScrapeCreatorsProvider(url, "test-key", timeout=0.3, attempts=3, backoff=0.01)
        started = time.monotonic()
        with pytest.raises(ProviderUnavailable, match=message) as info:
            await provider.search(SearchQuery("tiktok", "keyword", "x"), None)
        elapsed = time.monotonic() - started
        await provider.aclose()

        async def three_seen() -> bool:
            return len(fake.requests) >= 3

        # A request the client gave up on may reach the fake's handler a moment after the
        # client's timer fired (both share one event loop), so wait for it to be counted.
        await eventually(three_seen, within=1, interval=0.01)
    assert elapsed < 2  # gave up on each slow answer rather than waiting it out
    assert len(fake.requests) == 3
    assert is_transient(info.value) and not isinstance(info.value, ProviderError)


@pytest.mark.parametrize(
    ("key", "fault", "message"),
    [
        ("wrong-key", None, "HTTP 401"),
        ("test-key", Fault(status=400), "HTTP 400"),
        ("test-key", Fault(garbage=True), "not JSON"),
    ],
)
async def test_client_errors_and_garbage_fail_without_retrying(key, fault, message):
    async with fake_scrapecreators() as (fake, url):
        if fault:
            fake.script(fault)
        provider = ScrapeCreatorsProvider(url, key, backoff=0.01)
        with pytest.raises(ProviderError, match=message) as info:
            await provider.search(SearchQuery("tiktok", "keyword", "x"), None)
        await provider.aclose()
    assert len(fake.requests) == 1
    assert not is_transient(info.value)  # the job ends in error: retrying will not help


async def test_similar_search_is_not_offered_by_scrapecreators():
    provider = ScrapeCreatorsProvider("http://127.0.0.1:9", "k")
    with pytest.raises(ProviderError, match="keyword search only"):
        await provider.search(SearchQuery("tiktok", "similar", "someone"), None)
    await provider.aclose()
