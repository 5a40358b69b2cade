"""Creator providers: a small interface, a synthetic generator and the ScrapeCreators adapter."""

from shared.settings import Settings

from .base import Provider, ProviderError, ProviderUnavailable, SearchPage, SearchQuery
from .profiles import Profile, ProfileQuery
from .scrapecreators import ScrapeCreatorsProvider
from .synthetic import SyntheticProvider

__all__ = [
    "Profile",
    "ProfileQuery",
    "Provider",
    "ProviderError",
    "ProviderUnavailable",
    "ScrapeCreatorsProvider",
    "SearchPage",
    "SearchQuery",
    "SyntheticProvider",
    "make_provider",
]

NAMES = (SyntheticProvider.name, ScrapeCreatorsProvider.name)


def make_provider(settings: Settings) -> Provider:
    """The provider ``SCRAPING_PROVIDER`` names (``synthetic`` or ``scrapecreators``)."""
    name = settings.scraping_provider
    if name == SyntheticProvider.name:
        return SyntheticProvider()
    if name == ScrapeCreatorsProvider.name:
        if not settings.scraping_provider_base_url or not settings.scraping_provider_api_key:
            raise ValueError(
                "SCRAPING_PROVIDER=scrapecreators needs SCRAPING_PROVIDER_BASE_URL "
                "and SCRAPING_PROVIDER_API_KEY"
            )
        return ScrapeCreatorsProvider(
            settings.scraping_provider_base_url, settings.scraping_provider_api_key
        )
    raise ValueError(f"unknown SCRAPING_PROVIDER {name!r}; one of {', '.join(NAMES)}")
