"""Every enumerated value Scout stores, in one place.

Each enum backs a CHECK constraint on its column (see ``base.one_of``) and a test asserts every
value fits its column's length, so a value the code writes can never be rejected at runtime
(a 34-character webhook event type written into a varchar(20), say).
"""

from enum import StrEnum


class Service(StrEnum):
    identity = "identity"
    billing = "billing"
    campaign = "campaign"
    scraping = "scraping"


class OnboardingStep(StrEnum):
    pending = "pending"
    info_captured = "info_captured"
    intent_captured = "intent_captured"
    plan_selected = "plan_selected"
    completed = "completed"


class SubscriptionStatus(StrEnum):
    none = "none"
    trialing = "trialing"
    active = "active"
    past_due = "past_due"
    canceled = "canceled"
    unpaid = "unpaid"


class TrialStatus(StrEnum):
    """Derived, never stored (see ``shared.queries.users.derive_trial_status``)."""

    pending = "pending"
    active = "active"
    expired = "expired"
    converted = "converted"
    cancelled = "cancelled"


class BillingInterval(StrEnum):
    """How often a subscription is billed, spelled as the API speaks it everywhere (Stripe's
    ``month`` / ``year`` are translated where Stripe objects are read)."""

    monthly = "monthly"
    yearly = "yearly"


class BillingSyncStatus(StrEnum):
    pending = "pending"
    synced = "synced"
    webhook = "webhook"
    reconciled = "reconciled"
    admin = "admin"
    failed = "failed"


class PlanKey(StrEnum):
    glow_up = "glow_up"
    viral_surge = "viral_surge"
    fame_flex = "fame_flex"
    growth = "growth"
    scale = "scale"
    pro = "pro"


class UsageResource(StrEnum):
    campaigns = "campaigns"
    creators = "creators"
    enrichments = "enrichments"


class ReservationStatus(StrEnum):
    reserved = "reserved"
    confirmed = "confirmed"
    released = "released"
    expired = "expired"


class WebhookSource(StrEnum):
    stripe = "stripe"
    clerk = "clerk"


class WebhookStatus(StrEnum):
    processing = "processing"
    completed = "completed"
    failed = "failed"


class CampaignStatus(StrEnum):
    draft = "draft"
    active = "active"
    completed = "completed"
    archived = "archived"


class SearchType(StrEnum):
    keyword = "keyword"
    similar = "similar"


class Platform(StrEnum):
    instagram = "instagram"
    tiktok = "tiktok"
    youtube = "youtube"


class JobStatus(StrEnum):
    pending = "pending"
    processing = "processing"
    completed = "completed"
    error = "error"
    timeout = "timeout"
    cancelled = "cancelled"


TERMINAL_JOB_STATUSES = frozenset(
    {JobStatus.completed, JobStatus.error, JobStatus.timeout, JobStatus.cancelled}
)


class ListType(StrEnum):
    campaign = "campaign"
    favorites = "favorites"
    industry = "industry"
    research = "research"
    contacted = "contacted"
    custom = "custom"


class ListPrivacy(StrEnum):
    private = "private"
    public = "public"
    workspace = "workspace"


class ListBucket(StrEnum):
    backlog = "backlog"
    shortlist = "shortlist"
    contacted = "contacted"
    responded = "responded"
    booked = "booked"
    rejected = "rejected"


class ConfigValueType(StrEnum):
    number = "number"
    duration = "duration"
    boolean = "boolean"
    string = "string"
    json = "json"


class LogLevel(StrEnum):
    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"
    CRITICAL = "CRITICAL"


class BackgroundJobStatus(StrEnum):
    pending = "pending"
    processing = "processing"
    completed = "completed"
    failed = "failed"


class DeadLetterStatus(StrEnum):
    pending = "pending"
    replayed = "replayed"
    discarded = "discarded"


class IdempotencyStatus(StrEnum):
    processing = "processing"
    completed = "completed"


class EnrichmentStatus(StrEnum):
    pending = "pending"
    processing = "processing"
    completed = "completed"
    error = "error"


class EnrichmentItemStatus(StrEnum):
    pending = "pending"
    fetched = "fetched"  # asked from the provider: the one kind that spends an enrichment
    cached = "cached"  # answered from a profile fresher than ENRICHMENT_TTL_DAYS: free
    failed = "failed"  # the provider refused it for good: free
