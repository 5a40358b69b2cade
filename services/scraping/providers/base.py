"""The provider interface: fetch ONE page of creators for one search chain."""

from dataclasses import dataclass, field
from typing import Protocol

from shared.events.failures import TransientError
from shared.models.enums import Platform, SearchType

from ..creators import Creator
from .profiles import Profile, ProfileQuery


@dataclass(frozen=True)
class SearchQuery:
    platform: Platform
    search_type: SearchType
    term: str  # a keyword, or the seed username of a similar search (without "@")
    region: str = "US"


@dataclass(frozen=True)
class SearchPage:
    """One page: its creators and where the next page starts (``None``: the source is exhausted)."""

    creators: list[Creator] = field(default_factory=list)
    next_cursor: str | None = None

    @property
    def exhausted(self) -> bool:
        return self.next_cursor is None


class ProviderError(Exception):
    """The provider refused the search for good (a 4xx, bad data): the job ends in ``error``."""


class ProviderUnavailable(TransientError):
    """The provider is down or busy (5xx, 429, timeouts, connection errors) after the call's own
    quick retries: the work item is retried later, with backoff, and the job keeps going."""


class Provider(Protocol):
    name: str

    async def search(self, query: SearchQuery, cursor: str | None) -> SearchPage:
        """The page at ``cursor`` (``None`` = first page); raises :class:`ProviderError` or
        :class:`ProviderUnavailable`."""
        ...

    async def profile(self, query: ProfileQuery) -> Profile:
        """The creator's enriched profile; raises :class:`ProviderError` (unknown creator, bad
        data) or :class:`ProviderUnavailable`."""
        ...

    async def aclose(self) -> None: ...
