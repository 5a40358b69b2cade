"""Request and response bodies of the identity API (never table models)."""

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from shared.models.enums import ConfigValueType, LogLevel, OnboardingStep, PlanKey
from shared.queries.users import UserProfile

# Reference §6.3: names ≤ 120 characters, brand description ≤ 1500; blank is not a value.
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


class InfoCaptured(Strict):
    step: Literal[OnboardingStep.info_captured]
    full_name: Name
    business_name: Name


class IntentCaptured(Strict):
    step: Literal[OnboardingStep.intent_captured]
    brand_description: Description


class PlanSelected(Strict):
    step: Literal[OnboardingStep.plan_selected]
    plan: PlanKey
    interval: Literal["monthly", "yearly"]


class CompletedRequest(Strict):
    """Accepted only to answer clearly: ``completed`` is billing's to set (409)."""

    step: Literal[OnboardingStep.completed]


OnboardingRequest = Annotated[
    InfoCaptured | IntentCaptured | PlanSelected | CompletedRequest, Field(discriminator="step")
]


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
    published_at: datetime | None
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
