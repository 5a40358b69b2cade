"""Request and response models of the campaign API (never table models as bodies)."""

import math
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Generic, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from shared.models.enums import (
    CampaignStatus,
    ListBucket,
    ListPrivacy,
    ListType,
    Platform,
    SearchType,
)
from shared.results import MAX_CREATORS_PER_ANSWER, MAX_KEY_LENGTH, ResultsFilter
from shared.web import NO_NUL

T = TypeVar("T")
# ``from_job`` with ``all``: at most this many creators go into the list in one request.
MAX_FROM_JOB = 5_000

MAX_BULK_ITEMS = 500
# Deep pages are refused before OFFSET arithmetic can overflow (and they would be slow anyway).
MAX_PAGE = 100_000
MAX_TAG_FILTERS = 10
Tag = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=NO_NUL)]


INT64_MAX = 2**63 - 1
INT32_MAX = 2**31 - 1


def _unstorable(value: Any) -> str | None:
    """Why Postgres could not store ``value`` (anywhere inside it), or None if it can."""
    if isinstance(value, str):
        return "text must not contain NUL (\\u0000) characters" if "\x00" in value else None
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return "integers must fit in 64 bits" if abs(value) > INT64_MAX else None
    if isinstance(value, float):
        return None if math.isfinite(value) else "numbers must be finite"
    items = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else ()
    )
    for key, inner in items:
        if problem := _unstorable(key) or _unstorable(inner):
            return problem
    return None


class Body(BaseModel):
    """Request bodies: unknown fields are a 422, so a typo never silently does nothing."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, data: Any) -> Any:
        # What Postgres text/jsonb cannot hold (NUL, huge integers, NaN) is a 422 here, not a
        # 500 there — including inside free-form JSON such as metadata and settings.
        if problem := _unstorable(data):
            raise ValueError(problem)
        return data


class Public(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class PageOf(Public, Generic[T]):
    items: list[T]
    total: int
    page: int
    page_size: int


# campaigns ---------------------------------------------------------------------------------


class CampaignCreate(Body):
    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    search_type: SearchType = SearchType.keyword


class CampaignUpdate(Body):
    """Every field optional; only the fields sent are applied."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    status: CampaignStatus | None = None

    @field_validator("name", "status")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        # Omitted means "leave it"; an explicit null would mean "remove it", which these can't be.
        if value is None:
            raise ValueError("may be omitted but not null")
        return value


class CampaignPublic(Public):
    id: uuid.UUID
    name: str
    description: str | None
    search_type: SearchType
    status: CampaignStatus
    created_at: datetime
    updated_at: datetime


class CampaignJob(Public):
    """One search of a campaign, as ``GET /campaigns?include=jobs`` lists it."""

    id: uuid.UUID
    platform: str
    search_type: str
    keywords: list[str] | None
    status: str
    progress: float  # percent, two decimals (12.35)
    processed_results: int
    target_results: int
    created_at: datetime


class CampaignListed(CampaignPublic):
    """A campaign in ``GET /campaigns``; ``jobs`` is there only with ``include=jobs``."""

    jobs: list[CampaignJob] | None = Field(
        default=None, description="its searches, newest first; only with include=jobs"
    )


class JobSummaryPublic(Public):
    total: int
    by_status: dict[str, int]
    creators_found: int


class CampaignDetail(CampaignPublic):
    jobs: JobSummaryPublic


# lists -------------------------------------------------------------------------------------


class ListCreate(Body):
    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    type: ListType = ListType.custom
    privacy: ListPrivacy = ListPrivacy.private
    tags: list[Tag] = Field(default_factory=list, max_length=50)
    settings: dict[str, Any] = Field(default_factory=dict)


class ListUpdate(Body):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    type: ListType | None = None
    privacy: ListPrivacy | None = None
    tags: list[Tag] | None = Field(default=None, max_length=50)
    settings: dict[str, Any] | None = None
    is_archived: bool | None = None

    @field_validator("name", "type", "privacy", "tags", "settings", "is_archived")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("may be omitted but not null")
        return value


class ListPublic(Public):
    id: uuid.UUID
    name: str
    description: str | None
    type: ListType
    privacy: ListPrivacy
    tags: list[str]
    settings: dict[str, Any]
    is_archived: bool
    creator_count: int
    follower_sum: int
    created_at: datetime
    updated_at: datetime


class ListDetail(ListPublic):
    buckets: dict[str, int]


class CreatorInput(Body):
    """A creator to add, keyed by its stable (platform, external id): a creator id, never a video id."""

    platform: Platform
    external_id: str = Field(min_length=1, max_length=200)
    handle: str = Field(min_length=1, max_length=200)
    display_name: str | None = Field(default=None, max_length=500)
    avatar_url: str | None = Field(default=None, max_length=2000)
    url: str | None = Field(default=None, max_length=2000)
    followers: int | None = Field(default=None, ge=0, le=INT64_MAX)
    engagement_rate: Decimal | None = Field(default=None, ge=0, le=999)
    category: str | None = Field(default=None, max_length=200)
    metadata: dict[str, Any] = Field(default_factory=dict)
    metrics_snapshot: dict[str, Any] = Field(default_factory=dict)
    custom_fields: dict[str, Any] = Field(default_factory=dict)
    bucket: ListBucket = ListBucket.backlog
    notes: str | None = Field(default=None, max_length=5000)
    pinned: bool = False

    @field_validator("platform", mode="before")
    @classmethod
    def _lower_platform(cls, value: Any) -> Any:
        # Providers say "TikTok"/"Instagram": one spelling, or one creator becomes two keys.
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("external_id", "handle")
    @classmethod
    def _strip(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("must not be blank")
        return value


class FromJob(ResultsFilter):
    """Creators of one of the caller's search jobs, as scraping stored them: those named by
    ``creator_keys`` (1 to 500), or ``all`` the job's creators narrowed by the results filters
    (the first 5,000 in ``sort`` order)."""

    model_config = ConfigDict(extra="forbid")

    job_id: uuid.UUID
    creator_keys: list[str] | None = Field(
        default=None, min_length=1, max_length=MAX_CREATORS_PER_ANSWER
    )
    all: bool | None = None

    @field_validator("creator_keys")
    @classmethod
    def _keys(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        for key in value:
            if not 1 <= len(key.strip()) <= MAX_KEY_LENGTH or "\x00" in key:
                raise ValueError(f"each creator key must be 1 to {MAX_KEY_LENGTH} characters")
        return value

    @model_validator(mode="after")
    def _one_selection(self) -> "FromJob":
        if (self.creator_keys is None) == (self.all is None):
            raise ValueError("from_job takes either creator_keys or all: true")
        if self.all is False:
            raise ValueError("all must be true when given")
        if self.creator_keys is not None and (self.narrows or self.sort != "found"):
            raise ValueError("filters and sort go with all: true, not with creator_keys")
        return self


class ItemsAdd(Body):
    """Creators sent in the body (``items``), or taken from a search job (``from_job``)."""

    items: list[CreatorInput] | None = Field(default=None, min_length=1, max_length=MAX_BULK_ITEMS)
    from_job: FromJob | None = None

    @model_validator(mode="after")
    def _one_source(self) -> "ItemsAdd":
        if (self.items is None) == (self.from_job is None):
            raise ValueError("send either items or from_job")
        return self


class ItemsAdded(BaseModel):
    added: int
    skipped: int
    attempted: int


class ItemsAddedFromJob(ItemsAdded):
    missing: list[str]  # creator keys the job does not hold
    truncated: bool  # the narrowed set held more than 5,000 creators; the first 5,000 went in


class ItemChange(Body):
    id: uuid.UUID
    position: int | None = Field(default=None, ge=0, le=INT32_MAX)
    bucket: ListBucket | None = None
    notes: str | None = Field(default=None, max_length=5000)
    pinned: bool | None = None

    @field_validator("position", "bucket", "pinned")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("may be omitted but not null")
        return value


class ItemsUpdate(Body):
    items: list[ItemChange] = Field(min_length=1, max_length=MAX_BULK_ITEMS)


class ItemsUpdated(BaseModel):
    updated: int
    missing: list[uuid.UUID]


class ItemsRemove(Body):
    item_ids: list[uuid.UUID] = Field(min_length=1, max_length=MAX_BULK_ITEMS)


class ItemsRemoved(BaseModel):
    removed: int
    missing: list[uuid.UUID]


class ListItemPublic(BaseModel):
    id: uuid.UUID
    creator_id: uuid.UUID
    platform: Platform
    external_id: str
    handle: str
    display_name: str | None
    followers: int | None  # the enriched count once the creator is enriched
    engagement_rate: float | None = None  # percent, from enrichment
    email: str | None = None  # the first contact e-mail enrichment found
    position: int
    bucket: ListBucket
    notes: str | None
    pinned: bool
    added_at: datetime


# dashboard ---------------------------------------------------------------------------------


class ActivityPublic(BaseModel):
    type: str
    aggregate_type: str
    aggregate_id: str
    occurred_at: datetime
    data: dict[str, Any]


_WINDOW = "the last 30 days are whole UTC days: today (UTC) and the 29 days before it"


class Dashboard(BaseModel):
    campaigns: dict[str, int]  # total + one count per status
    searches_last_30_days: int = Field(description=f"searches created; {_WINDOW}")
    searches_completed_last_30_days: int = Field(
        description=f"of those, the ones completed; {_WINDOW}"
    )
    creators_found_last_30_days: int = Field(
        description=f"creators found by the searches created in the window, finished or running;"
        f" {_WINDOW}"
    )
    lists: int
    pipeline: dict[str, int]  # one count per bucket + total
    recent_activity: list[ActivityPublic]


# enrichment --------------------------------------------------------------------------------

MAX_LIST_ENRICHMENT = 1000  # creators of a list enriched in one go


class ListEnrichmentStarted(BaseModel):
    """The enrichment scraping started for the list (follow it with scraping's
    ``GET /enrichments/{id}``)."""

    id: uuid.UUID
    status: str
    total: int
    done: int
    failed: int
