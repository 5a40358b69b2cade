"""Request and response bodies of the identity API (never table models)."""

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from shared.models.enums import BillingInterval, ConfigValueType, LogLevel, PlanKey
from shared.queries.users import UserProfile

# Names ≤ 120 characters, brand description ≤ 1500 (what the sign-up form accepts); blank is
# not a value.
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120)]
Description = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1500)
]
Industry = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class Strict(BaseModel):
    """Unknown fields are an error (422), never silently ignored."""

    model_config = ConfigDict(extra="forbid")


# --- /me -------------------------------------------------------------------------------------

MeProfile = UserProfile


class MeUpdate(Strict):
    """``PATCH /me``: profile fields only; omitted fields are untouched, null clears."""

    full_name: Name | None = None
    business_name: Name | None = None
    brand_description: Description | None = None
    industry: Industry | None = None


# The steps are plain string literals (the ``OnboardingStep`` values), so a wrong step is
# answered with the allowed values as the API spells them, never with Python enum reprs.


class InfoCaptured(Strict):
    step: Literal["info_captured"]
    full_name: Name
    business_name: Name


class IntentCaptured(Strict):
    step: Literal["intent_captured"]
    brand_description: Description


class PlanSelected(Strict):
    step: Literal["plan_selected"]
    plan: PlanKey
    interval: BillingInterval


class CompletedRequest(Strict):
    """Accepted only to answer clearly: ``completed`` is billing's to set (409)."""

    step: Literal["completed"]


OnboardingRequest = Annotated[
    InfoCaptured | IntentCaptured | PlanSelected | CompletedRequest, Field(discriminator="step")
]


# --- webhooks --------------------------------------------------------------------------------


class ClerkEmail(BaseModel):
    id: str
    email_address: str


class ClerkUser(BaseModel):
    """The ``data`` of a Clerk user event (the fields Scout reads; Clerk sends more)."""

    model_config = ConfigDict(extra="allow")

    id: str = Field(description="The Clerk user id (`user_…`).")
    first_name: str | None = None
    last_name: str | None = None
    primary_email_address_id: str | None = None
    email_addresses: list[ClerkEmail] = []


class ClerkEvent(BaseModel):
    """A Clerk webhook delivery, documented only: the route verifies the raw body first."""

    model_config = ConfigDict(extra="allow")

    type: Literal["user.created", "user.updated", "user.deleted"]
    object: Literal["event"] = "event"
    data: ClerkUser


# --- admin -----------------------------------------------------------------------------------


class UserSummary(BaseModel):
    id: uuid.UUID
    user_id: str
    email: str | None
    full_name: str | None
    onboarding_step: str
    is_admin: bool
    current_plan: str | None
    subscription_status: str
    created_at: datetime
    deleted_at: datetime | None


class UserPage(BaseModel):
    items: list[UserSummary]
    total: int
    page: int
    page_size: int


class Inconsistency(BaseModel):
    code: str
    detail: str


class EventSummary(BaseModel):
    id: uuid.UUID
    service: str
    type: str
    version: int
    aggregate_type: str
    aggregate_id: str
    occurred_at: datetime
    published: bool  # acknowledged by JetStream
    data: dict[str, Any]


class DeletionStep(BaseModel):
    """One service's part of a user's deletion: asked since ``since``, done at ``applied_at``."""

    service: str
    since: datetime
    last_asked_at: datetime
    applied_at: datetime | None

    @property
    def pending(self) -> bool:
        return self.applied_at is None


class UserDossier(BaseModel):
    """Everything about one user: profile, derived trial status, rows per table, events, problems."""

    profile: UserProfile
    trial_status: str
    child_rows: dict[str, bool]  # 1:1 children present or not
    related_rows: dict[str, int]  # rows per user-owned table, every service
    deletion: list[DeletionStep]  # empty unless the user's deletion has started
    inconsistencies: list[Inconsistency]
    recent_events: list[EventSummary]


class ConfigPublic(BaseModel):
    category: str
    key: str
    value: str  # the canonical stored text
    value_type: ConfigValueType
    typed_value: Any  # durations in seconds
    description: str | None
    is_hot_reloadable: bool
    updated_at: datetime


class ConfigPut(Strict):
    """The value in its natural JSON form (``5``, ``true``, ``"30s"``, ``{...}``) or as text."""

    value: Any = Field(...)
    value_type: ConfigValueType | None = None  # required when the key does not exist yet
    description: str | None = Field(default=None, max_length=1000)


class LoggingPublic(BaseModel):
    service: str
    logger: str
    level: LogLevel
    updated_at: datetime


class LoggingPut(Strict):
    level: LogLevel

    @field_validator("level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value
