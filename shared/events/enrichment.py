"""Payloads of creator enrichment: its events, its work item and its request/reply
(catalogued in ``catalogue.py`` like every other subject)."""

import uuid
from datetime import datetime

from pydantic import Field

from shared.models.enums import Platform

from .payload import Payload


class CreatorProfileData(Payload):
    """An enriched creator profile, as scraping stores and serves it."""

    bio: str = ""
    emails: list[str] = Field(default_factory=list)
    followers: int | None = None
    following: int | None = None
    posts: int | None = None
    engagement_rate: float | None = None  # percent
    avg_views: int | None = None
    links: list[str] = Field(default_factory=list)
    category: str | None = None
    verified: bool = False
    enriched_at: datetime
    source: str = ""
    synthetic: bool = False


class CreatorEnriched(Payload):
    """A creator's latest enriched profile (fetched now, or answered from a fresh stored one)."""

    platform: Platform
    external_id: str
    handle: str
    profile: CreatorProfileData
    enrichment_id: uuid.UUID | None = None


class EnrichmentEnded(Payload):
    """An enrichment finished: billing keeps ``fetched`` counted and gives the rest back."""

    enrichment_id: uuid.UUID
    user_id: uuid.UUID
    total: int = Field(ge=1)
    done: int = Field(ge=0)
    failed: int = Field(ge=0)
    fetched: int = Field(ge=0)
    reservation_id: uuid.UUID | None = None


class EnrichWorkItem(Payload):
    """One creator of an enrichment to fetch from the provider (one worker takes it)."""

    enrichment_id: uuid.UUID
    position: int = Field(ge=0)


# request/reply ----------------------------------------------------------------------------


class EnrichmentCreatorRef(Payload):
    platform: Platform
    external_id: str = Field(min_length=1, max_length=255)
    handle: str = Field(min_length=1, max_length=255)


class EnrichmentStartRequest(Payload):
    """Start one enrichment for ``user_id`` (a list's creators, asked by campaign)."""

    user_id: uuid.UUID
    operation_id: uuid.UUID  # the enrichment's id and its reservation key: retries find it
    creators: list[EnrichmentCreatorRef] = Field(min_length=1, max_length=1000)


class EnrichmentStartReply(Payload):
    id: uuid.UUID
    status: str
    total: int = Field(ge=1)
    done: int = Field(ge=0)
    failed: int = Field(ge=0)
