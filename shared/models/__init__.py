"""Every Scout table, defined once, grouped by the service that owns it.

Importing this package registers all tables on ``SQLModel.metadata`` (what Alembic compares).
"""

from sqlmodel import SQLModel

from .base import NAMING_CONVENTION, TableBase
from .billing import (
    BillingUsageMonth,
    SubscriptionPlan,
    UsageReservation,
    UserBilling,
    UserSubscription,
    UserUsage,
)
from .campaign import (
    Campaign,
    CampaignUserStats,
    CreatorList,
    CreatorListTag,
    CreatorProfile,
    ListItem,
)
from .enrichments import CreatorEnrichment, Enrichment, EnrichmentItem
from .enums import Service
from .identity import (
    LoggingConfiguration,
    SystemConfiguration,
    User,
    UserDeletionStep,
    UserSystemData,
)
from .messaging import (
    BackgroundJob,
    DeadLetter,
    Event,
    EventAttempt,
    IdempotencyKey,
    InboxEntry,
    PendingEvent,
    RateLimit,
    WebhookEvent,
)
from .scraping import (
    ScrapingJob,
    ScrapingJobCreator,
    ScrapingJobFlagCount,
    ScrapingJobKeyword,
    ScrapingResult,
    ScrapingUserDay,
)

metadata = SQLModel.metadata

SHARED = "shared"
"""Owner of tables every service writes; rows carry a ``service`` (or webhook ``source``) column."""

# table -> owning service. Only the owner writes a table (enforced by tests and DB grants).
OWNERSHIP: dict[str, str] = {
    "users": Service.identity,
    "user_system_data": Service.identity,
    "system_configurations": Service.identity,
    "logging_configurations": Service.identity,
    "user_deletion_steps": Service.identity,
    "subscription_plans": Service.billing,
    "user_subscriptions": Service.billing,
    "user_billing": Service.billing,
    "user_usage": Service.billing,
    "usage_reservations": Service.billing,
    "billing_usage_months": Service.billing,
    "campaigns": Service.campaign,
    "creator_profiles": Service.campaign,
    "creator_lists": Service.campaign,
    "creator_list_tags": Service.campaign,
    "list_items": Service.campaign,
    "campaign_user_stats": Service.campaign,
    "scraping_jobs": Service.scraping,
    "scraping_results": Service.scraping,
    "scraping_job_creators": Service.scraping,
    "scraping_job_flag_counts": Service.scraping,
    "scraping_user_days": Service.scraping,
    "scraping_job_keywords": Service.scraping,
    "scraping_enrichments": Service.scraping,
    "scraping_enrichment_items": Service.scraping,
    "scraping_creator_profiles": Service.scraping,
    "events": SHARED,
    "events_pending": SHARED,
    "inbox": SHARED,
    "event_attempts": SHARED,
    "dead_letters": SHARED,
    "background_jobs": SHARED,
    # Inbound webhooks: identity writes source=clerk rows, billing source=stripe rows.
    "webhook_events": SHARED,
    "rate_limits": SHARED,  # keys are prefixed by the service that limits
    "idempotency_keys": SHARED,  # rows carry the service that answered
}


def tables_owned_by(service: str) -> list[str]:
    """Tables ``service`` may write: its own plus the shared, service-tagged ones."""
    return sorted(t for t, owner in OWNERSHIP.items() if owner in (service, SHARED))


__all__ = [
    "NAMING_CONVENTION",
    "OWNERSHIP",
    "SHARED",
    "BackgroundJob",
    "BillingUsageMonth",
    "Campaign",
    "CampaignUserStats",
    "CreatorEnrichment",
    "CreatorList",
    "CreatorListTag",
    "CreatorProfile",
    "DeadLetter",
    "Enrichment",
    "EnrichmentItem",
    "Event",
    "EventAttempt",
    "IdempotencyKey",
    "InboxEntry",
    "ListItem",
    "LoggingConfiguration",
    "PendingEvent",
    "RateLimit",
    "ScrapingJob",
    "ScrapingJobCreator",
    "ScrapingJobFlagCount",
    "ScrapingJobKeyword",
    "ScrapingResult",
    "ScrapingUserDay",
    "SubscriptionPlan",
    "SystemConfiguration",
    "TableBase",
    "UsageReservation",
    "User",
    "UserBilling",
    "UserDeletionStep",
    "UserSubscription",
    "UserSystemData",
    "UserUsage",
    "WebhookEvent",
    "metadata",
    "tables_owned_by",
]
