"""Profile endpoints: the synthetic provider, and the ScrapeCreators adapter against its fake."""

import pytest

from services.scraping.providers import (
    ProfileQuery,
    ProviderError,
    ProviderUnavailable,
    ScrapeCreatorsProvider,
    SyntheticProvider,
)
from shared.events.failures import is_transient

from ..support.fake_provider import Fault, fake_scrapecreators, profile_figures


async def test_synthetic_profiles_are_deterministic_labelled_and_differ_per_creator():
    provider = SyntheticProvider()
    query = ProfileQuery("tiktok", "6700000000000000042", "sunnychef42")
    first, again = await provider.profile(query), await provider.profile(query)
    assert first == again
    assert first.synthetic and first.source == "synthetic" and first.bio.startswith("[synthetic]")
    assert all(e.endswith("@example.com") for e in first.emails)
    assert first.followers and first.followers >= 1_000 and first.engagement_rate is not None
    other = await provider.profile(ProfileQuery("tiktok", "6700000000000000043", "wildgamer43"))
    assert (other.followers, other.bio) != (first.followers, first.bio)
    with pytest.raises(ProviderError):
        await provider.profile(ProfileQuery("youtube", "missing-channel", "gone"))


async def test_the_three_profile_endpoints_are_called_and_normalised():
    async with fake_scrapecreators() as (fake, url):
        provider = ScrapeCreatorsProvider(url, "test-key")
        try:
            tiktok = await provider.profile(ProfileQuery("tiktok", "68123", "dancer1"))
            insta = await provider.profile(ProfileQuery("instagram", "9001", "photog"))
            youtube = await provider.profile(ProfileQuery("youtube", "UCabc", "reviews"))
        finally:
            await provider.aclose()
    assert fake.requests == [
        ("/v1/tiktok/profile", {"handle": "dancer1"}),
        ("/v1/instagram/profile", {"handle": "photog"}),
        ("/v1/youtube/channel", {"channelId": "UCabc"}),
    ]
    f = profile_figures("dancer1")
    assert (tiktok.followers, tiktok.following, tiktok.posts) == (
        f["followers"], f["following"], f["posts"],
    )  # fmt: skip
    # 500 likes per video over the followers, in percent.
    assert tiktok.engagement_rate == pytest.approx(100 * 500 / f["followers"], abs=1e-4)
    assert tiktok.emails == ["dancer1@mail.test"] and tiktok.verified
    assert tiktok.links == ["https://links.test/dancer1"] and not tiktok.synthetic
    f = profile_figures("photog")
    assert insta.followers == f["followers"] and insta.category == "Photographer"
    assert insta.emails == ["photog@brand.test"]
    assert insta.links == ["https://photog.test", "https://x.test"]
    # Recent posts: (320 + 100) / 2 interactions; views only where a post has them.
    assert insta.engagement_rate == pytest.approx(100 * 210 / f["followers"], abs=1e-4)
    assert insta.avg_views == 4_000
    f = profile_figures("UCabc")
    assert youtube.followers == f["followers"] and youtube.avg_views == 2_500
    assert youtube.emails == ["yt@channel.test"]
    assert youtube.links == ["https://channel.test", "https://shop.test"]
    assert youtube.engagement_rate is None  # the channel endpoint gives nothing to compute it


async def test_5xx_429_and_timeouts_are_retried_within_the_call():
    async with fake_scrapecreators() as (fake, url):
        fake.script(Fault(status=503), Fault(status=429, retry_after=0), Fault(delay=1.0))
        provider = ScrapeCreatorsProvider(url, "test-key", timeout=0.3, attempts=4, backoff=0.01)
        try:
            profile = await provider.profile(ProfileQuery("tiktok", "1", "steady"))
        finally:
            await provider.aclose()
    assert profile.followers == profile_figures("steady")["followers"]
    assert len(fake.requests) == 4


async def test_a_lasting_outage_is_transient_and_an_unknown_creator_is_permanent():
    async with fake_scrapecreators() as (fake, url):
        provider = ScrapeCreatorsProvider(url, "test-key", attempts=2, backoff=0.01)
        try:
            fake.always = Fault(status=502)
            with pytest.raises(ProviderUnavailable) as outage:
                await provider.profile(ProfileQuery("instagram", "1", "someone"))
            assert is_transient(outage.value)
            fake.always = None
            with pytest.raises(ProviderError) as unknown:
                await provider.profile(ProfileQuery("instagram", "1", "missing_person"))
            assert not is_transient(unknown.value)
        finally:
            await provider.aclose()
