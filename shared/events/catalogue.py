"""Every subject Scout publishes, its producer, stream and typed payload.

``CATALOGUE`` maps the unprefixed subject (``identity.user.created.v1``) to an :class:`EventSpec`.
Producers validate ``data`` strictly (``extra="forbid"`` catches typos); consumers read tolerantly
(:meth:`EventSpec.parse` ignores unknown fields) so adding an optional field never breaks v1.
Breaking changes get a new version (``.v2``) and both are catalogued while consumers move.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import Field

from shared.models.enums import (
    BillingInterval,
    CampaignStatus,
    ConfigValueType,
    JobStatus,
    LogLevel,
    OnboardingStep,
    Platform,
    ReservationStatus,
    SearchType,
    Service,
    SubscriptionStatus,
    UsageResource,
)
from shared.results import JobCreatorsReply, JobCreatorsRequest

from .enrichment import (
    CreatorEnriched,
    EnrichmentEnded,
    EnrichmentStartReply,
    EnrichmentStartRequest,
    EnrichWorkItem,
)
from .envelope import event_subject
from .payload import Payload

# identity ---------------------------------------------------------------------------------


class UserRef(Payload):
    user_id: uuid.UUID  # users.id (the one id space of foreign keys)
    clerk_user_id: str  # users.user_id, the id the API speaks


class UserCreated(UserRef):
    email: str | None = None
    full_name: str | None = None


class UserUpdated(UserRef):
    changes: dict[str, Any]  # field name → new value, profile fields only


class UserDeleted(UserRef):
    pass


class UserPurged(UserRef):
    """A service has removed everything it holds of a deleted user (its step of the deletion).

    Each purging service publishes its own (``billing.user.purged``, ``campaign.user.purged``,
    ``scraping.user.purged``) in the transaction of its purge; identity records it and deletes
    the ``users`` row once every service has.
    """


class OnboardingStepChanged(UserRef):
    previous_step: OnboardingStep
    step: OnboardingStep
    plan: str | None = None  # set with plan_selected
    interval: BillingInterval | None = None


class ConfigChanged(Payload):
    category: str
    key: str
    value: str
    value_type: ConfigValueType
    previous_value: str | None = None


class LoggingChanged(Payload):
    service: str  # a Service value, or "*" for every service
    logger: str
    level: LogLevel


# billing ----------------------------------------------------------------------------------


class SubscriptionChanged(Payload):
    user_id: uuid.UUID
    plan: str | None
    previous_plan: str | None = None
    status: SubscriptionStatus
    previous_status: SubscriptionStatus | None = None
    billing_interval: BillingInterval | None = None
    trial_start_date: datetime | None = None
    trial_end_date: datetime | None = None
    current_period_end: datetime | None = None
    cancel_at: datetime | None = None


class TrialStarted(Payload):
    user_id: uuid.UUID
    plan: str
    trial_start_date: datetime
    trial_end_date: datetime


class TrialExpired(Payload):
    user_id: uuid.UUID
    plan: str | None
    trial_end_date: datetime


class TrialConverted(Payload):
    user_id: uuid.UUID
    plan: str
    converted_at: datetime


# campaign ---------------------------------------------------------------------------------


class CampaignRef(Payload):
    campaign_id: uuid.UUID
    user_id: uuid.UUID


class CampaignCreated(CampaignRef):
    name: str
    status: CampaignStatus
    search_type: SearchType


class CampaignUpdated(CampaignRef):
    changes: dict[str, Any]
    status: CampaignStatus


class CampaignDeleted(CampaignRef):
    pass


# scraping ---------------------------------------------------------------------------------


class JobRef(Payload):
    job_id: uuid.UUID
    user_id: uuid.UUID
    campaign_id: uuid.UUID


class JobCreated(JobRef):
    platform: Platform
    search_type: SearchType
    target_results: int = Field(ge=1)
    keywords: list[str] | None = None
    target_username: str | None = None
    reservation_id: uuid.UUID | None = None


class JobProgressed(JobRef):
    processed_results: int = Field(ge=0)
    target_results: int = Field(ge=1)
    progress: float = Field(ge=0, le=100)


class JobEnded(JobRef):
    """A terminal job event: billing settles ``processed_results`` against the reservation."""

    status: JobStatus
    processed_results: int = Field(ge=0)
    reservation_id: uuid.UUID | None = None
    error: str | None = None


class SearchWorkItem(Payload):
    """A unit of search work on the work-queue stream (one worker takes it)."""

    job_id: uuid.UUID
    cursor: int = Field(default=0, ge=0)  # page number within the chain
    # The search chain this page belongs to: a keyword, or "@<username>" for a similar search.
    keyword: str | None = Field(default=None, max_length=200)


# the registry -----------------------------------------------------------------------------


@dataclass(frozen=True)
class EventSpec:
    type: str
    version: int
    producer: Service
    stream: str  # unprefixed stream name
    payload: type[Payload]

    @property
    def subject(self) -> str:
        return event_subject(self.type, self.version)

    def validate(self, data: Payload | dict[str, Any]) -> dict[str, Any]:
        """Producer side: strict validation, returns the JSON-ready dict stored in the outbox."""
        if isinstance(data, Payload):
            if not isinstance(data, self.payload):
                raise TypeError(f"{self.subject} takes {self.payload.__name__}")
            return data.model_dump(mode="json")
        return self.payload.model_validate(data).model_dump(mode="json")

    def parse(self, data: dict[str, Any]) -> Payload:
        """Consumer side: tolerant reader, fields this code does not know yet are ignored."""
        known = {k: v for k, v in data.items() if k in self.payload.model_fields}
        return self.payload.model_validate(known)


class UnknownEvent(LookupError):
    """An event type/version that is not in the catalogue."""


def _spec(type: str, producer: Service, stream: str, payload: type[Payload]) -> EventSpec:
    return EventSpec(type=type, version=1, producer=producer, stream=stream, payload=payload)


_I, _B, _C, _S = Service.identity, Service.billing, Service.campaign, Service.scraping
_SPECS = [
    _spec("identity.user.created", _I, "IDENTITY", UserCreated),
    _spec("identity.user.updated", _I, "IDENTITY", UserUpdated),
    _spec("identity.user.deleted", _I, "IDENTITY", UserDeleted),
    _spec("identity.onboarding.step_changed", _I, "IDENTITY", OnboardingStepChanged),
    # platform.* is produced by identity (it owns runtime config), so it lives in its stream.
    _spec("platform.config.changed", _I, "IDENTITY", ConfigChanged),
    _spec("platform.logging.changed", _I, "IDENTITY", LoggingChanged),
    _spec("billing.user.purged", _B, "BILLING", UserPurged),
    _spec("billing.subscription.changed", _B, "BILLING", SubscriptionChanged),
    _spec("billing.trial.started", _B, "BILLING", TrialStarted),
    _spec("billing.trial.expired", _B, "BILLING", TrialExpired),
    _spec("billing.trial.converted", _B, "BILLING", TrialConverted),
    _spec("campaign.user.purged", _C, "CAMPAIGN", UserPurged),
    _spec("campaign.campaign.created", _C, "CAMPAIGN", CampaignCreated),
    _spec("campaign.campaign.updated", _C, "CAMPAIGN", CampaignUpdated),
    _spec("campaign.campaign.deleted", _C, "CAMPAIGN", CampaignDeleted),
    _spec("scraping.user.purged", _S, "SCRAPING", UserPurged),
    _spec("scraping.job.created", _S, "SCRAPING", JobCreated),
    _spec("scraping.job.progressed", _S, "SCRAPING", JobProgressed),
    _spec("scraping.job.completed", _S, "SCRAPING", JobEnded),
    _spec("scraping.job.failed", _S, "SCRAPING", JobEnded),
    _spec("scraping.job.timed_out", _S, "SCRAPING", JobEnded),
    _spec("scraping.job.cancelled", _S, "SCRAPING", JobEnded),
    _spec("scraping.creator.enriched", _S, "SCRAPING", CreatorEnriched),
    _spec("scraping.enrichment.completed", _S, "SCRAPING", EnrichmentEnded),
    # Work items, not facts: a work-queue stream hands each one to exactly one worker.
    _spec("scraping.work.search", _S, "SCRAPING_WORK", SearchWorkItem),
    _spec("scraping.work.enrich", _S, "SCRAPING_WORK", EnrichWorkItem),
]
CATALOGUE: dict[str, EventSpec] = {spec.subject: spec for spec in _SPECS}


def spec_for(type: str, version: int = 1) -> EventSpec:
    """The catalogue entry of ``type`` at ``version``; :class:`UnknownEvent` if there is none."""
    try:
        return CATALOGUE[event_subject(type, version)]
    except KeyError:
        raise UnknownEvent(
            f"{event_subject(type, version)} is not in the event catalogue"
        ) from None


# request/reply (core NATS, never captured by a stream) ------------------------------------


class UsageReserveRequest(Payload):
    user_id: uuid.UUID
    resource: UsageResource
    amount: int = Field(gt=0)
    idempotency_key: str = Field(max_length=200)  # the same key twice reserves once
    ttl_seconds: int = Field(default=900, gt=0)


class UsageReserveReply(Payload):
    allowed: bool
    reservation_id: uuid.UUID | None = None
    used: int
    limit: int  # -1 = unlimited
    code: str | None = None  # e.g. creators_limit_reached when not allowed


class UsageReleaseRequest(Payload):
    reservation_id: uuid.UUID
    used_amount: int = Field(default=0, ge=0)  # what was consumed; the rest is given back


class UsageReleaseKeyRequest(Payload):
    """Give up the reservation asked with ``idempotency_key``, whether or not it exists yet.

    The caller sends it when it stopped waiting for a reserve's answer: a hold that committed is
    given back, and a reserve that has not arrived yet finds the key taken by a released
    tombstone and holds nothing. ``resource`` and ``amount`` describe the tombstone.
    """

    user_id: uuid.UUID
    resource: UsageResource
    amount: int = Field(gt=0)
    idempotency_key: str = Field(max_length=200)


class UsageReleaseReply(Payload):
    reservation_id: uuid.UUID
    status: ReservationStatus
    released: int = Field(ge=0)


@dataclass(frozen=True)
class RpcSpec:
    subject: str
    server: Service
    request: type[Payload]
    reply: type[Payload]


RPC: dict[str, RpcSpec] = {
    s.subject: s
    for s in (
        RpcSpec("billing.usage.reserve", _B, UsageReserveRequest, UsageReserveReply),
        RpcSpec("billing.usage.release", _B, UsageReleaseRequest, UsageReleaseReply),
        RpcSpec("billing.usage.release_key", _B, UsageReleaseKeyRequest, UsageReleaseReply),
        RpcSpec(
            "scraping.results.creators", Service.scraping, JobCreatorsRequest, JobCreatorsReply
        ),
        RpcSpec("scraping.enrichments.start", _S, EnrichmentStartRequest, EnrichmentStartReply),
    )
}
