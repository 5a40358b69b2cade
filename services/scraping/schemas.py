"""Request and response models of the scraping API."""

import re
import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shared.models import ScrapingJob
from shared.models.enums import (
    EnrichmentItemStatus,
    EnrichmentStatus,
    JobStatus,
    Platform,
    SearchType,
)
from shared.results import ResultsFilter

MAX_KEYWORDS = 50
MAX_RESULTS_LIMIT = 500  # creators per results page
# Far beyond any job (target_results is at most 1,000; the seed's largest job holds 100,000), and
# far inside what Postgres and the JSON encoder take: a bigger offset is a 422, never a 500.
MAX_RESULTS_OFFSET = 1_000_000_000
# Deepest narrowed or sorted page (Elasticsearch's result window, for the same reason: each
# page walks its offset in an index).
MAX_NARROWED_OFFSET = 10_000
_USERNAME = re.compile(r"^[A-Za-z0-9._-]{1,100}$")
_REGION = re.compile(r"^[A-Za-z]{2}$")


class JobCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    campaign_id: uuid.UUID
    platform: Platform
    search_type: SearchType = SearchType.keyword
    keywords: list[str] | None = Field(default=None, max_length=MAX_KEYWORDS)
    target_username: str | None = None
    region: str = "US"
    target_results: int = Field(default=100, ge=1, le=1000)

    @field_validator("keywords")
    @classmethod
    def _clean_keywords(cls, value: list[str] | None) -> list[str] | None:
        """Trimmed, 2 to 100 characters each, deduplicated case-insensitively (first spelling wins)."""
        if value is None:
            return None
        seen: dict[str, str] = {}
        for raw in value:
            keyword = " ".join(raw.split())
            if not 2 <= len(keyword) <= 100:
                raise ValueError(f"each keyword must be 2 to 100 characters, got {raw!r}")
            seen.setdefault(keyword.lower(), keyword)
        return list(seen.values())

    @field_validator("target_username")
    @classmethod
    def _clean_username(cls, value: str | None) -> str | None:
        if value is None:
            return None
        username = value.strip().removeprefix("@")
        if not _USERNAME.match(username):
            raise ValueError("target_username must be a handle: letters, digits, '.', '_', '-'")
        return username

    @field_validator("region")
    @classmethod
    def _clean_region(cls, value: str) -> str:
        if not _REGION.match(value.strip()):
            raise ValueError("region must be a two-letter country code, e.g. US")
        return value.strip().upper()

    @model_validator(mode="after")
    def _one_source(self) -> "JobCreate":
        if self.search_type == SearchType.keyword:
            if not self.keywords:
                raise ValueError("a keyword search needs 1 to 50 keywords")
            if self.target_username is not None:
                raise ValueError("a keyword search takes keywords, not target_username")
        else:
            if not self.target_username:
                raise ValueError("a similar search needs target_username")
            if self.keywords:
                raise ValueError("a similar search takes target_username, not keywords")
        return self

    @property
    def chains(self) -> list[str]:
        """The independent search chains: one per keyword, or ``@username``."""
        return list(self.keywords or []) or [f"@{self.target_username}"]


class JobPublic(BaseModel):
    id: uuid.UUID
    campaign_id: uuid.UUID
    status: JobStatus
    platform: Platform
    search_type: SearchType
    keywords: list[str] | None
    target_username: str | None
    region: str
    target_results: int
    processed_results: int  # creators stored: written from COUNT(*) with each batch
    processed_runs: int  # provider pages fetched
    progress: float
    error: str | None
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    timeout_at: datetime | None

    @classmethod
    def of(cls, job: ScrapingJob) -> "JobPublic":
        return cls(
            id=job.id, campaign_id=job.campaign_id, status=JobStatus(job.status),
            platform=Platform(job.platform), search_type=SearchType(job.search_type),
            keywords=job.keywords, target_username=job.target_username, region=job.region,
            target_results=job.target_results, processed_results=job.processed_results,
            processed_runs=job.processed_runs, progress=float(job.progress), error=job.error,
            created_at=job.created_at, started_at=job.started_at,
            completed_at=job.completed_at, timeout_at=job.timeout_at,
        )  # fmt: skip


class JobPage(BaseModel):
    items: list[JobPublic]
    total: int
    page: int
    page_size: int


class ResultsPage(BaseModel):
    items: list[dict[str, Any]]  # creators in the one normalised shape (services.scraping.creators)
    total: int
    offset: int
    limit: int
    next_offset: int | None


class ResultsQuery(ResultsFilter):
    """``GET /jobs/{id}/results``'s query: the window and the narrowing (all bounded)."""

    offset: int = Field(default=0, ge=0, le=MAX_RESULTS_OFFSET)
    limit: int = Field(default=100, ge=1, le=MAX_RESULTS_LIMIT)

    @model_validator(mode="after")
    def _narrowed_window(self) -> "ResultsQuery":
        if (self.narrows or self.sort != "found") and self.offset > MAX_NARROWED_OFFSET:
            raise ValueError(
                f"offset of a narrowed or sorted page is at most {MAX_NARROWED_OFFSET}"
            )
        return self


# --- enrichment --------------------------------------------------------------------------------

MAX_DIRECT_ENRICHMENT = 100  # creators per POST /enrichments (a list's enrich may hold 1,000)


class CreatorRef(BaseModel):
    """A creator to enrich: the platform's creator id and its handle."""

    model_config = ConfigDict(extra="forbid")

    platform: Platform
    external_id: str = Field(min_length=1, max_length=255)
    handle: str = Field(min_length=1, max_length=255)

    @field_validator("external_id", "handle")
    @classmethod
    def _trimmed(cls, value: str) -> str:
        value = value.strip().removeprefix("@").strip()
        if not value:
            raise ValueError("must not be blank")
        return value


class EnrichmentCreate(BaseModel):
    """Either ``creators`` or a job's ``creator_keys`` (with ``job_id``)."""

    model_config = ConfigDict(extra="forbid")

    creators: list[CreatorRef] | None = Field(
        default=None, min_length=1, max_length=MAX_DIRECT_ENRICHMENT
    )
    job_id: uuid.UUID | None = None
    creator_keys: list[str] | None = Field(
        default=None, min_length=1, max_length=MAX_DIRECT_ENRICHMENT
    )

    @field_validator("creator_keys")
    @classmethod
    def _keys(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        keys = list(dict.fromkeys(k.strip().lower() for k in value))
        if any(not k or len(k) > 255 for k in keys):
            raise ValueError("each creator key must be 1 to 255 characters")
        return keys

    @model_validator(mode="after")
    def _one_source(self) -> "EnrichmentCreate":
        by_job = self.job_id is not None or self.creator_keys is not None
        if self.creators is not None and by_job:
            raise ValueError("give either creators or job_id with creator_keys, not both")
        if self.creators is None and (self.job_id is None or self.creator_keys is None):
            raise ValueError("give creators, or job_id with creator_keys")
        return self


class EnrichedProfile(BaseModel):
    bio: str
    emails: list[str]
    followers: int | None
    following: int | None
    posts: int | None
    engagement_rate: float | None
    avg_views: int | None
    links: list[str]
    category: str | None
    verified: bool
    enriched_at: datetime
    source: str
    synthetic: bool

    @classmethod
    def of(cls, profile: dict[str, Any], enriched_at: datetime) -> "EnrichedProfile":
        return cls.model_validate({**profile, "enriched_at": enriched_at})


class EnrichmentSummary(BaseModel):
    id: uuid.UUID
    status: EnrichmentStatus
    total: int
    done: int
    failed: int


class EnrichmentItemPublic(BaseModel):
    platform: Platform
    external_id: str
    handle: str
    status: EnrichmentItemStatus
    profile: EnrichedProfile | None = None
    error: str | None = None


class EnrichmentPublic(EnrichmentSummary):
    fetched: int  # the enrichments this one spent (cached and failed creators spend nothing)
    created_at: datetime
    completed_at: datetime | None
    items: list[EnrichmentItemPublic]


class CreatorProfilePublic(BaseModel):
    platform: Platform
    external_id: str
    handle: str
    profile: EnrichedProfile
