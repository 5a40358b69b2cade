"""Configuration from the environment: one class, read once per process."""

from functools import lru_cache
from typing import Literal

from croniter import croniter
from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_CLERK_WEBHOOK_SECRET = "whsec_c2NvdXQtZGV2LWNsZXJrLXdlYmhvb2stc2VjcmV0"
DEV_STRIPE_WEBHOOK_SECRET = "whsec_scout_dev_stripe_webhook_secret"
# Scout's own database on the local server (``scout dev`` creates it when missing) …
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/scout"
# … and that server's maintenance database, to find the server and create databases on it.
LOCAL_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_NATS_URL = "nats://127.0.0.1:4222"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore", case_sensitive=False)

    scout_env: Literal["development", "test", "production"] = "development"
    database_url: str = DEFAULT_DATABASE_URL
    nats_url: str = DEFAULT_NATS_URL
    scout_nats_prefix: str = ""

    identity_port: int = 8001
    billing_port: int = 8002
    campaign_port: int = 8003
    scraping_port: int = 8004

    auth_jwks_url: str | None = None
    auth_public_key: str | None = None
    auth_issuer: str = "scout-dev"

    clerk_webhook_secret: str = DEV_CLERK_WEBHOOK_SECRET
    stripe_webhook_secret: str = DEV_STRIPE_WEBHOOK_SECRET
    stripe_secret_key: str | None = None
    stripe_api_base: str | None = None

    scraping_provider: str = "synthetic"
    scraping_provider_base_url: str | None = None
    scraping_provider_api_key: str | None = None
    # How long a search work item may go unacknowledged before another worker gets it (the
    # consumer's keep-alive extends it while a slow page is still being worked on).
    scraping_work_ack_wait_seconds: float = Field(default=60, gt=0)
    # An enriched profile younger than this is answered from storage and spends nothing.
    enrichment_ttl_days: float = Field(default=30, ge=0, le=3650)
    # An enrichment still live this long after it was created ends in error (its unfinished
    # creators failed, what was fetched charged); at most 6 h, billing's hold on its quota.
    enrichment_timeout_minutes: float = Field(default=30, gt=0, le=360)

    log_level: str = "INFO"
    log_format: Literal["json", "console"] = "console"

    db_pool_size: int = Field(default=10, ge=1)
    # Nothing waits forever on an unreachable database: connecting, running one statement and
    # waiting for a pooled connection each give up after these (0 = no statement limit).
    db_connect_timeout_seconds: float = Field(default=5, gt=0)
    db_statement_timeout_seconds: float = Field(default=30, ge=0)
    db_pool_timeout_seconds: float = Field(default=5, gt=0)

    # Delivery: a transient failure (a dependency away) is retried until it succeeds, with
    # backoff capped here; a permanent one is dead-lettered after this many attempts.
    events_retry_max_seconds: float = Field(default=30, gt=0)
    events_max_attempts: int = Field(default=5, ge=1)

    # How long JetStream keeps an event for consumers (work queues keep items until acked).
    nats_stream_max_age_days: float = Field(default=7, gt=0)
    # Retention of the rows that would otherwise grow forever, in days (fractions allowed:
    # tests use seconds' worth). Pruned by every worker on RETENTION_SCHEDULE (cron, UTC; a
    # sixth field gives seconds).
    retention_events_days: float = Field(default=30, gt=0)  # published outbox rows
    retention_inbox_days: float = Field(default=14, gt=0)  # applied event ids (and attempts)
    retention_webhook_events_days: float = Field(default=30, gt=0)  # finished webhooks
    retention_background_jobs_days: float = Field(default=14, gt=0)  # finished jobs
    retention_rate_limits_days: float = Field(default=1, gt=0)  # idle rate-limit keys
    retention_dead_letters_days: float = Field(default=30, gt=0)  # replayed or discarded
    retention_enrichments_days: float = Field(default=30, gt=0)  # finished enrichments
    retention_schedule: str = "*/10 * * * *"

    # Worker processes serve Prometheus metrics here when set (APIs use their own /metrics).
    worker_metrics_port: int | None = None
    worker_metrics_host: str = "0.0.0.0"
    # JetStream replicas for Scout's streams: 1 on one server, 3 on the production cluster.
    nats_stream_replicas: int = Field(default=1, ge=1, le=5)

    # How long a service waits for billing's answer to a quota question before it gives the
    # reservation up and answers 503 (billing_unavailable).
    quota_timeout_seconds: float = Field(default=5, gt=0)
    # Idempotency-Key: how long a first response is kept and replayed (1 day = 24 h); keys are
    # pruned after it by the retention job.
    retention_idempotency_keys_days: float = Field(default=1, gt=0)

    # Per-user request budgets (requests per minute, the whole minute usable at once; 0 = off).
    # At most a million a minute: a request's cost (60 µs at that rate) stays above the
    # microsecond resolution the limiter computes in.
    rate_limit_job_creates_per_minute: int = Field(default=30, ge=0, le=1_000_000)
    rate_limit_list_writes_per_minute: int = Field(default=120, ge=0, le=1_000_000)

    @property
    def local_billing(self) -> bool:
        """Billing sells plans itself (a local checkout page, ``scout billing subscribe``):
        development without a Stripe key. Never in ``test`` or ``production``."""
        return self.scout_env == "development" and not self.stripe_secret_key

    @field_validator("retention_schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        if not croniter.is_valid(value):
            raise ValueError(f"RETENTION_SCHEDULE is not a cron expression: {value!r}")
        return value

    @model_validator(mode="after")
    def _inbox_outlives_the_stream(self) -> "Settings":
        # The inbox is what makes a redelivered event a no-op: it must remember an event id
        # for as long as JetStream may still deliver that event.
        if self.retention_inbox_days < self.nats_stream_max_age_days:
            raise ValueError(
                f"RETENTION_INBOX_DAYS ({self.retention_inbox_days:g}) is shorter than "
                f"NATS_STREAM_MAX_AGE_DAYS ({self.nats_stream_max_age_days:g}): an event still "
                "in its stream could be applied twice; keep inbox ids at least as long"
            )
        return self

    @model_validator(mode="after")
    def _refuse_default_secrets_in_production(self) -> "Settings":
        if self.scout_env == "production" and "log_format" not in self.model_fields_set:
            self.log_format = "json"  # log shippers read JSON; LOG_FORMAT=console overrides
        if self.scout_env == "production":
            defaults = {
                "CLERK_WEBHOOK_SECRET": self.clerk_webhook_secret == DEV_CLERK_WEBHOOK_SECRET,
                "STRIPE_WEBHOOK_SECRET": self.stripe_webhook_secret == DEV_STRIPE_WEBHOOK_SECRET,
                "AUTH_JWKS_URL or AUTH_PUBLIC_KEY": not (
                    self.auth_jwks_url or self.auth_public_key
                ),
            }
            missing = [name for name, is_default in defaults.items() if is_default]
            if missing:
                raise ValueError(
                    "production refuses development defaults; set " + ", ".join(missing)
                )
        return self


@lru_cache
def get_settings() -> Settings:
    return Settings()
