"""How a job's results are narrowed and sorted, and scraping's answer to "which creators of
this job?" (``scraping.results.creators``), shared by scraping (which owns results) and campaign
(which puts them in lists).

The filters are one model with its bounds, so ``GET /jobs/{id}/results`` and ``POST
/lists/{id}/items`` with ``from_job`` accept exactly the same narrowing.
"""

import uuid
from enum import StrEnum
from typing import Any

from nats.aio.client import Client as NATS
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shared.errors import DependencyUnavailable, ScoutError
from shared.models.enums import Platform

# Far beyond any creator's audience, far inside a bigint: a larger bound is a 422, never a 500.
MAX_FOLLOWERS = 10**12
MAX_QUERY_LENGTH = 100
MAX_KEY_LENGTH = 255
# Creators one question returns: a reply stays well inside NATS's 1 MiB message limit.
MAX_CREATORS_PER_ANSWER = 500
CREATORS = "scraping.results.creators"
# Room for a busy scraping worker; the question only reads, so asking again is always safe.
TIMEOUT_SECONDS = 5.0


class QueryTooShort(ScoutError):
    """``q`` with no three letters or digits in a row, on a job bigger than a search makes
    (more than 1,000 creators): the trigram index cannot narrow it, and reading every creator
    of such a job would take seconds."""

    status_code = 422
    code = "query_too_short"
    detail = (
        "On a job of more than 1,000 creators, q needs at least three letters or digits in a row."
    )


class ResultsSort(StrEnum):
    found = "found"  # discovery order
    followers_desc = "followers_desc"
    followers_asc = "followers_asc"


class ResultsFilter(BaseModel):
    """Narrowing and order of a job's creators; every bound checked (422 beyond)."""

    min_followers: int | None = Field(default=None, ge=0, le=MAX_FOLLOWERS)
    max_followers: int | None = Field(default=None, ge=0, le=MAX_FOLLOWERS)
    verified: bool | None = None
    has_email: bool | None = None
    # Case-insensitive substring of username, display name or bio.
    q: str | None = Field(default=None, min_length=1, max_length=MAX_QUERY_LENGTH)
    sort: ResultsSort = ResultsSort.found

    @field_validator("q")
    @classmethod
    def _clean_q(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = " ".join(value.split())
        if not value:
            raise ValueError("q must not be blank")
        if "\x00" in value:
            raise ValueError("q must not contain NUL characters")
        return value

    @model_validator(mode="after")
    def _range(self) -> "ResultsFilter":
        low, high = self.min_followers, self.max_followers
        if low is not None and high is not None and low > high:
            raise ValueError("min_followers must not be greater than max_followers")
        return self

    def narrowing(self) -> "ResultsFilter":
        """Only the filter and sort fields (a subclass's extra fields dropped)."""
        return ResultsFilter.model_validate(
            self.model_dump(include=set(ResultsFilter.model_fields))
        )

    @property
    def narrows(self) -> bool:
        """True when any filter is set (the sort alone does not narrow)."""
        return any(
            getattr(self, name) is not None
            for name in ("min_followers", "max_followers", "verified", "has_email", "q")
        )


class JobCreatorsRequest(BaseModel):
    """Creators of ``user_id``'s job ``job_id``: those named by ``creator_keys``, or the
    narrowed set's ``[offset, offset + limit)`` in its order."""

    model_config = ConfigDict(extra="forbid")

    user_id: uuid.UUID
    job_id: uuid.UUID
    creator_keys: list[str] | None = Field(
        default=None, min_length=1, max_length=MAX_CREATORS_PER_ANSWER
    )
    filter: ResultsFilter = Field(default_factory=ResultsFilter)
    offset: int = Field(default=0, ge=0, le=1_000_000)
    limit: int = Field(default=MAX_CREATORS_PER_ANSWER, ge=1, le=MAX_CREATORS_PER_ANSWER)


class JobCreator(BaseModel):
    """A stored creator as lists need it (the served result, without its bulky content)."""

    model_config = ConfigDict(extra="ignore")

    platform: Platform
    creator_key: str
    external_id: str | None = None
    username: str | None = None
    display_name: str | None = None
    profile_url: str | None = None
    avatar_url: str | None = None
    followers: int | None = None
    engagement_rate: float | None = None
    verified: bool = False
    emails: list[str] = Field(default_factory=list)
    source: str | None = None
    synthetic: bool = False


class JobCreatorsReply(BaseModel):
    creators: list[JobCreator]
    missing: list[str] = Field(default_factory=list)  # keys asked for that the job lacks
    more: bool = False  # the narrowed set goes on past this answer

    @classmethod
    def of(cls, creators: list[dict[str, Any]], **rest: Any) -> "JobCreatorsReply":
        return cls(creators=[JobCreator.model_validate(c) for c in creators], **rest)


class ResultsClient:
    """The one client for asking scraping for a job's creators (``scraping.results.creators``).

    Fails closed like the quota client: NATS down, nobody answering, no answer within the
    timeout or scraping failing → :class:`DependencyUnavailable` (503). Scraping's own refusals
    (``job_not_found``) arrive as ``shared.events.rpc.RemoteError`` with their status and code.
    """

    def __init__(self, nc: NATS | None, prefix: str = "", *, timeout: float = TIMEOUT_SECONDS):
        self.nc, self.prefix, self.timeout = nc, prefix, timeout

    async def creators(self, request: JobCreatorsRequest) -> JobCreatorsReply:
        from shared.events import rpc  # the catalogue imports this module's models

        if self.nc is None or not self.nc.is_connected:
            raise DependencyUnavailable("NATS is unreachable, so scraping cannot be asked.")
        return await rpc.request(
            self.nc, CREATORS, request, prefix=self.prefix, timeout=self.timeout
        )
