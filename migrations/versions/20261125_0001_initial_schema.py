"""Initial schema: every table of every service, updated_at triggers, and the six plans.

Revision ID: 0001
Revises:
Create Date: 2026-11-25 09:31:43.309043
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from migrations.helpers import (
    add_updated_at_trigger,
    create_updated_at_function,
    drop_updated_at_function,
)

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = [
    "background_jobs",
    "creator_profiles",
    "dead_letters",
    "events",
    "inbox",
    "logging_configurations",
    "subscription_plans",
    "system_configurations",
    "users",
    "webhook_events",
    "campaigns",
    "creator_lists",
    "usage_reservations",
    "user_billing",
    "user_subscriptions",
    "user_system_data",
    "user_usage",
    "list_items",
    "scraping_jobs",
    "scraping_job_creators",
    "scraping_results",
]

# The six plans on offer (three legacy, three current). Prices in cents; -1 = unlimited.
# Legacy plans stay valid for their subscribers but are not offered (is_active = false).
PLANS = [
    # key, name, monthly, yearly, campaigns, creators, enrichments, legacy, order, features
    (
        "growth",
        "Growth",
        19900,
        190800,
        -1,
        6000,
        500,
        False,
        1,
        {
            "csvExport": True,
            "analytics": "basic",
            "apiAccess": False,
            "prioritySupport": False,
            "realtimeUpdates": False,
        },
    ),
    (
        "scale",
        "Scale",
        59900,
        574800,
        -1,
        30000,
        1000,
        False,
        2,
        {
            "csvExport": True,
            "analytics": "advanced",
            "apiAccess": True,
            "prioritySupport": False,
            "realtimeUpdates": True,
            "popular": True,
        },
    ),
    (
        "pro",
        "Pro",
        199900,
        1918800,
        -1,
        75000,
        10000,
        False,
        3,
        {
            "csvExport": True,
            "analytics": "advanced",
            "apiAccess": True,
            "prioritySupport": True,
            "realtimeUpdates": True,
        },
    ),
    (
        "glow_up",
        "Glow Up",
        9900,
        79000,
        3,
        1000,
        50,
        True,
        4,
        {
            "csvExport": True,
            "analytics": "basic",
            "apiAccess": False,
            "prioritySupport": False,
            "realtimeUpdates": True,
        },
    ),
    (
        "viral_surge",
        "Viral Surge",
        24900,
        199000,
        10,
        10000,
        200,
        True,
        5,
        {
            "csvExport": True,
            "analytics": "advanced",
            "apiAccess": False,
            "prioritySupport": True,
            "realtimeUpdates": True,
        },
    ),
    (
        "fame_flex",
        "Fame Flex",
        49900,
        399000,
        -1,
        -1,
        -1,
        True,
        6,
        {
            "csvExport": True,
            "analytics": "advanced",
            "apiAccess": True,
            "prioritySupport": True,
            "realtimeUpdates": True,
        },
    ),
]


def seed_plans() -> None:
    plans = sa.table(
        "subscription_plans",
        sa.column("plan_key"),
        sa.column("plan_name"),
        sa.column("price_monthly"),
        sa.column("price_yearly"),
        sa.column("campaigns_limit"),
        sa.column("creators_limit"),
        sa.column("enrichments_limit"),
        sa.column("is_legacy"),
        sa.column("is_active"),
        sa.column("display_order"),
        sa.column("features", postgresql.JSONB),
        sa.column("stripe_price_id_monthly"),
        sa.column("stripe_price_id_yearly"),
    )
    op.bulk_insert(
        plans,
        [
            {
                "plan_key": key,
                "plan_name": name,
                "price_monthly": monthly,
                "price_yearly": yearly,
                "campaigns_limit": campaigns,
                "creators_limit": creators,
                "enrichments_limit": enrichments,
                "is_legacy": legacy,
                "is_active": not legacy,
                "display_order": order,
                "features": features,
                "stripe_price_id_monthly": f"price_{key}_monthly",
                "stripe_price_id_yearly": f"price_{key}_yearly",
            }
            for key, name, monthly, yearly, campaigns, creators, enrichments, legacy, order, features in PLANS
        ],
    )


def upgrade() -> None:
    # Fail fast instead of queueing behind a long lock on a live table.
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.create_table(
        "background_jobs",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("service", sa.String(length=8), nullable=False),
        sa.Column("job_type", sa.String(length=100), nullable=False),
        sa.Column(
            "payload",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("status", sa.String(length=10), server_default="pending", nullable=False),
        sa.Column("dedupe_key", sa.String(length=200), nullable=True),
        sa.Column(
            "schedule",
            sa.String(length=100),
            nullable=True,
            comment="cron expression of a recurring job",
        ),
        sa.Column("priority", sa.Integer(), server_default=sa.text("100"), nullable=False),
        sa.Column("max_retries", sa.Integer(), server_default=sa.text("3"), nullable=False),
        sa.Column("retry_count", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column(
            "scheduled_for",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("result", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.CheckConstraint(
            "service IN ('identity', 'billing', 'campaign', 'scraping')",
            name=op.f("ck_background_jobs_service_allowed"),
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'processing', 'completed', 'failed')",
            name=op.f("ck_background_jobs_status_allowed"),
        ),
        sa.CheckConstraint(
            "retry_count >= 0 AND max_retries >= 0",
            name=op.f("ck_background_jobs_retries_non_negative"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_background_jobs")),
    )
    op.create_index(
        "ix_background_jobs_job_type_status",
        "background_jobs",
        ["job_type", "status"],
        unique=False,
    )
    op.create_index(
        "ix_background_jobs_service_due",
        "background_jobs",
        ["service", "priority", "scheduled_for"],
        unique=False,
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index(
        "uq_background_jobs_dedupe_key_live",
        "background_jobs",
        ["dedupe_key"],
        unique=True,
        postgresql_where=sa.text("status IN ('pending', 'processing')"),
    )
    op.create_table(
        "creator_profiles",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("platform", sa.String(length=9), nullable=False),
        sa.Column("external_id", sa.Text(), nullable=False),
        sa.Column("handle", sa.Text(), nullable=False),
        sa.Column("display_name", sa.Text(), nullable=True),
        sa.Column("avatar_url", sa.Text(), nullable=True),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("followers", sa.BigInteger(), nullable=True),
        sa.Column("engagement_rate", sa.Numeric(precision=7, scale=4), nullable=True),
        sa.Column("category", sa.Text(), nullable=True),
        sa.Column(
            "metadata",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "platform IN ('instagram', 'tiktok', 'youtube')",
            name=op.f("ck_creator_profiles_platform_allowed"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_creator_profiles")),
        sa.UniqueConstraint(
            "platform", "external_id", name=op.f("uq_creator_profiles_platform_external_id")
        ),
    )
    op.create_index(
        "ix_creator_profiles_platform_handle",
        "creator_profiles",
        ["platform", "handle"],
        unique=False,
    )
    op.create_table(
        "dead_letters",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("service", sa.String(length=8), nullable=False),
        sa.Column("consumer", sa.String(length=100), nullable=False),
        sa.Column("stream", sa.String(length=100), nullable=True),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("event_id", sa.String(length=255), nullable=True),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column(
            "headers",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("deliveries", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=9), server_default="pending", nullable=False),
        sa.Column("replayed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "service IN ('identity', 'billing', 'campaign', 'scraping')",
            name=op.f("ck_dead_letters_service_allowed"),
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'replayed', 'discarded')",
            name=op.f("ck_dead_letters_status_allowed"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dead_letters")),
    )
    op.create_index(op.f("ix_dead_letters_event_id"), "dead_letters", ["event_id"], unique=False)
    op.create_index(
        "ix_dead_letters_status_created_at", "dead_letters", ["status", "created_at"], unique=False
    )
    op.create_table(
        "events",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("seq", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("service", sa.String(length=8), nullable=False),
        sa.Column("type", sa.String(length=100), nullable=False),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("aggregate_type", sa.String(length=50), nullable=False),
        sa.Column("aggregate_id", sa.Text(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("correlation_id", sa.String(length=100), nullable=True),
        sa.Column("causation_id", sa.String(length=100), nullable=True),
        sa.Column(
            "data",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "occurred_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("publish_attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "service IN ('identity', 'billing', 'campaign', 'scraping')",
            name=op.f("ck_events_service_allowed"),
        ),
        sa.CheckConstraint("version >= 1", name=op.f("ck_events_version_positive")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
    )
    op.create_index(
        "ix_events_aggregate_type_aggregate_id",
        "events",
        ["aggregate_type", "aggregate_id"],
        unique=False,
    )
    op.create_index("ix_events_published_at", "events", ["published_at"], unique=False)
    op.create_index(
        "ix_events_seq_unpublished",
        "events",
        ["seq"],
        unique=False,
        postgresql_where=sa.text("published_at IS NULL"),
    )
    op.create_index("ix_events_type_occurred_at", "events", ["type", "occurred_at"], unique=False)
    op.create_index(
        "ix_events_user_id_occurred_at", "events", ["user_id", "occurred_at"], unique=False
    )
    op.create_table(
        "inbox",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("service", sa.String(length=8), nullable=False),
        sa.Column("consumer", sa.String(length=100), nullable=False),
        sa.Column("event_id", sa.String(length=255), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=True),
        sa.CheckConstraint(
            "service IN ('identity', 'billing', 'campaign', 'scraping')",
            name=op.f("ck_inbox_service_allowed"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbox")),
        sa.UniqueConstraint("consumer", "event_id", name=op.f("uq_inbox_consumer_event_id")),
    )
    op.create_index("ix_inbox_created_at", "inbox", ["created_at"], unique=False)
    op.create_table(
        "logging_configurations",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("service", sa.String(length=20), nullable=False),
        sa.Column("logger", sa.String(length=200), nullable=False),
        sa.Column("level", sa.String(length=8), nullable=False),
        sa.CheckConstraint(
            "level IN ('DEBUG', 'INFO', 'WARNING', 'ERROR', 'CRITICAL')",
            name=op.f("ck_logging_configurations_level_allowed"),
        ),
        sa.CheckConstraint(
            "service IN ('identity', 'billing', 'campaign', 'scraping', '*')",
            name=op.f("ck_logging_configurations_service_allowed"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_logging_configurations")),
        sa.UniqueConstraint(
            "service", "logger", name=op.f("uq_logging_configurations_service_logger")
        ),
    )
    op.create_table(
        "subscription_plans",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("plan_key", sa.String(length=50), nullable=False),
        sa.Column("plan_name", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column(
            "campaigns_limit",
            sa.Integer(),
            nullable=False,
            comment="campaigns at once; -1 = unlimited",
        ),
        sa.Column(
            "creators_limit",
            sa.Integer(),
            nullable=False,
            comment="creators per month; -1 = unlimited",
        ),
        sa.Column(
            "enrichments_limit",
            sa.Integer(),
            nullable=False,
            comment="enrichments per month; -1 = unlimited",
        ),
        sa.Column(
            "features",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("price_monthly", sa.Integer(), nullable=False),
        sa.Column("price_yearly", sa.Integer(), nullable=False),
        sa.Column("stripe_price_id_monthly", sa.Text(), nullable=True),
        sa.Column("stripe_price_id_yearly", sa.Text(), nullable=True),
        sa.Column("is_legacy", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("display_order", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.CheckConstraint(
            "campaigns_limit >= -1", name=op.f("ck_subscription_plans_campaigns_limit_range")
        ),
        sa.CheckConstraint(
            "creators_limit >= -1", name=op.f("ck_subscription_plans_creators_limit_range")
        ),
        sa.CheckConstraint(
            "enrichments_limit >= -1", name=op.f("ck_subscription_plans_enrichments_limit_range")
        ),
        sa.CheckConstraint(
            "price_monthly >= 0 AND price_yearly >= 0",
            name=op.f("ck_subscription_plans_prices_positive"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscription_plans")),
        sa.UniqueConstraint("plan_key", name=op.f("uq_subscription_plans_plan_key")),
    )
    op.create_index(
        "ix_subscription_plans_is_active_display_order",
        "subscription_plans",
        ["is_active", "display_order"],
        unique=False,
    )
    op.create_table(
        "system_configurations",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("category", sa.String(length=50), nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("value_type", sa.String(length=8), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column(
            "is_hot_reloadable", sa.Boolean(), server_default=sa.text("true"), nullable=False
        ),
        sa.CheckConstraint(
            "value_type IN ('number', 'duration', 'boolean', 'string', 'json')",
            name=op.f("ck_system_configurations_value_type_allowed"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_system_configurations")),
        sa.UniqueConstraint("category", "key", name=op.f("uq_system_configurations_category_key")),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("email", sa.Text(), nullable=True),
        sa.Column("full_name", sa.Text(), nullable=True),
        sa.Column("business_name", sa.Text(), nullable=True),
        sa.Column("brand_description", sa.Text(), nullable=True),
        sa.Column("industry", sa.Text(), nullable=True),
        sa.Column(
            "onboarding_step", sa.String(length=15), server_default="pending", nullable=False
        ),
        sa.Column("is_admin", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "onboarding_step IN ('pending', 'info_captured', 'intent_captured', 'plan_selected', 'completed')",
            name=op.f("ck_users_onboarding_step_allowed"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("user_id", name=op.f("uq_users_user_id")),
    )
    op.create_index(
        "ix_users_email_lower",
        "users",
        [sa.text("lower(email)")],
        postgresql_ops={"lower(email)": "text_pattern_ops"},
        unique=False,
    )
    op.create_table(
        "webhook_events",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("source", sa.String(length=6), nullable=False),
        sa.Column("event_type", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=10), server_default="processing", nullable=False),
        sa.Column("event_timestamp", sa.DateTime(timezone=True), nullable=True),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("retry_count", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("metadata", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.CheckConstraint(
            "source IN ('stripe', 'clerk')", name=op.f("ck_webhook_events_source_allowed")
        ),
        sa.CheckConstraint(
            "status IN ('processing', 'completed', 'failed')",
            name=op.f("ck_webhook_events_status_allowed"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_events")),
        sa.UniqueConstraint("source", "event_id", name=op.f("uq_webhook_events_source_event_id")),
    )
    op.create_index(
        "ix_webhook_events_status_created_at",
        "webhook_events",
        ["status", "created_at"],
        unique=False,
    )
    op.create_table(
        "campaigns",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("search_type", sa.String(length=7), server_default="keyword", nullable=False),
        sa.Column("status", sa.String(length=9), server_default="draft", nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "search_type IN ('keyword', 'similar')", name=op.f("ck_campaigns_search_type_allowed")
        ),
        sa.CheckConstraint(
            "status IN ('draft', 'active', 'completed', 'archived')",
            name=op.f("ck_campaigns_status_allowed"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_campaigns_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaigns")),
    )
    op.create_index(
        "ix_campaigns_user_id_created_at", "campaigns", ["user_id", "created_at"], unique=False
    )
    op.create_index(
        "ix_campaigns_user_id_status_created_at",
        "campaigns",
        ["user_id", "status", "created_at"],
        unique=False,
    )
    op.create_table(
        "creator_lists",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("type", sa.String(length=9), server_default="custom", nullable=False),
        sa.Column("privacy", sa.String(length=9), server_default="private", nullable=False),
        sa.Column(
            "tags",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "settings",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("is_archived", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("creator_count", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("follower_sum", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.CheckConstraint(
            "privacy IN ('private', 'public', 'workspace')",
            name=op.f("ck_creator_lists_privacy_allowed"),
        ),
        sa.CheckConstraint(
            "type IN ('campaign', 'favorites', 'industry', 'research', 'contacted', 'custom')",
            name=op.f("ck_creator_lists_type_allowed"),
        ),
        sa.CheckConstraint(
            "creator_count >= 0 AND follower_sum >= 0",
            name=op.f("ck_creator_lists_stats_non_negative"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_creator_lists_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_creator_lists")),
    )
    op.create_index(
        "ix_creator_lists_user_id_is_archived_updated_at",
        "creator_lists",
        ["user_id", "is_archived", "updated_at"],
        unique=False,
    )
    op.create_table(
        "usage_reservations",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("resource", sa.String(length=11), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("used_amount", sa.Integer(), nullable=True),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=9), server_default="reserved", nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "resource IN ('campaigns', 'creators', 'enrichments')",
            name=op.f("ck_usage_reservations_resource_allowed"),
        ),
        sa.CheckConstraint(
            "status IN ('reserved', 'confirmed', 'released', 'expired')",
            name=op.f("ck_usage_reservations_status_allowed"),
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_usage_reservations_amount_positive")),
        sa.CheckConstraint(
            "used_amount IS NULL OR (used_amount >= 0 AND used_amount <= amount)",
            name=op.f("ck_usage_reservations_used_amount_range"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_usage_reservations_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_usage_reservations")),
        sa.UniqueConstraint(
            "user_id", "idempotency_key", name=op.f("uq_usage_reservations_user_id_idempotency_key")
        ),
    )
    op.create_index(
        "ix_usage_reservations_expires_at_reserved",
        "usage_reservations",
        ["expires_at"],
        unique=False,
        postgresql_where=sa.text("status = 'reserved'"),
    )
    op.create_index(
        op.f("ix_usage_reservations_user_id"), "usage_reservations", ["user_id"], unique=False
    )
    op.create_table(
        "user_billing",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("stripe_customer_id", sa.Text(), nullable=True),
        sa.Column("stripe_subscription_id", sa.Text(), nullable=True),
        sa.Column("payment_method_id", sa.Text(), nullable=True),
        sa.Column("card_last4", sa.String(length=4), nullable=True),
        sa.Column("card_brand", sa.String(length=20), nullable=True),
        sa.Column("card_exp_month", sa.Integer(), nullable=True),
        sa.Column("card_exp_year", sa.Integer(), nullable=True),
        sa.Column("billing_address_city", sa.Text(), nullable=True),
        sa.Column("billing_address_country", sa.String(length=2), nullable=True),
        sa.Column("billing_address_postal_code", sa.String(length=20), nullable=True),
        sa.CheckConstraint(
            "card_last4 ~ '^[0-9]{4}$'", name=op.f("ck_user_billing_card_last4_digits")
        ),
        sa.CheckConstraint(
            "card_exp_month BETWEEN 1 AND 12", name=op.f("ck_user_billing_card_exp_month_range")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_user_billing_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_billing")),
        sa.UniqueConstraint("stripe_customer_id", name=op.f("uq_user_billing_stripe_customer_id")),
        sa.UniqueConstraint("user_id", name=op.f("uq_user_billing_user_id")),
    )
    op.create_index(
        "uq_user_billing_stripe_subscription_id",
        "user_billing",
        ["stripe_subscription_id"],
        unique=True,
        postgresql_where=sa.text("stripe_subscription_id IS NOT NULL"),
    )
    op.create_table(
        "user_subscriptions",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("current_plan", sa.String(length=50), nullable=True),
        sa.Column("intended_plan", sa.String(length=50), nullable=True),
        sa.Column(
            "subscription_status", sa.String(length=8), server_default="none", nullable=False
        ),
        sa.Column("trial_start_date", sa.DateTime(timezone=True), nullable=True),
        sa.Column("trial_end_date", sa.DateTime(timezone=True), nullable=True),
        sa.Column("trial_conversion_date", sa.DateTime(timezone=True), nullable=True),
        sa.Column("subscription_cancel_date", sa.DateTime(timezone=True), nullable=True),
        sa.Column("subscription_renewal_date", sa.DateTime(timezone=True), nullable=True),
        sa.Column("billing_interval", sa.String(length=5), nullable=True),
        sa.Column("current_period_end", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "billing_sync_status", sa.String(length=10), server_default="pending", nullable=False
        ),
        sa.Column("stripe_state_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "billing_interval IS NULL OR billing_interval IN ('month', 'year')",
            name=op.f("ck_user_subscriptions_billing_interval_allowed"),
        ),
        sa.CheckConstraint(
            "billing_sync_status IN ('pending', 'synced', 'webhook', 'reconciled', 'admin', 'failed')",
            name=op.f("ck_user_subscriptions_billing_sync_status_allowed"),
        ),
        sa.CheckConstraint(
            "subscription_status IN ('none', 'trialing', 'active', 'past_due', 'canceled', 'unpaid')",
            name=op.f("ck_user_subscriptions_subscription_status_allowed"),
        ),
        sa.CheckConstraint(
            "trial_end_date IS NULL OR trial_start_date IS NULL OR trial_end_date >= trial_start_date",
            name=op.f("ck_user_subscriptions_trial_dates_ordered"),
        ),
        sa.ForeignKeyConstraint(
            ["current_plan"],
            ["subscription_plans.plan_key"],
            name=op.f("fk_user_subscriptions_current_plan_subscription_plans"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["intended_plan"],
            ["subscription_plans.plan_key"],
            name=op.f("fk_user_subscriptions_intended_plan_subscription_plans"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_user_subscriptions_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_subscriptions")),
        sa.UniqueConstraint("user_id", name=op.f("uq_user_subscriptions_user_id")),
    )
    op.create_index(
        op.f("ix_user_subscriptions_current_plan"),
        "user_subscriptions",
        ["current_plan"],
        unique=False,
    )
    op.create_index(
        op.f("ix_user_subscriptions_intended_plan"),
        "user_subscriptions",
        ["intended_plan"],
        unique=False,
    )
    op.create_index(
        "ix_user_subscriptions_status_trial_end_date",
        "user_subscriptions",
        ["subscription_status", "trial_end_date"],
        unique=False,
    )
    op.create_table(
        "user_system_data",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column(
            "signup_timestamp",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "email_schedule_status",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("last_webhook_event", sa.String(length=100), nullable=True),
        sa.Column("last_webhook_timestamp", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_user_system_data_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_system_data")),
        sa.UniqueConstraint("user_id", name=op.f("uq_user_system_data_user_id")),
    )
    op.create_table(
        "user_usage",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("plan_campaigns_limit", sa.Integer(), nullable=True),
        sa.Column("plan_creators_limit", sa.Integer(), nullable=True),
        sa.Column(
            "plan_features",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "usage_campaigns_current", sa.Integer(), server_default=sa.text("0"), nullable=False
        ),
        sa.Column(
            "usage_creators_current_month",
            sa.Integer(),
            server_default=sa.text("0"),
            nullable=False,
        ),
        sa.Column(
            "enrichments_current_month", sa.Integer(), server_default=sa.text("0"), nullable=False
        ),
        sa.Column(
            "usage_reset_date",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "coalesce(plan_campaigns_limit, 0) >= -1 AND coalesce(plan_creators_limit, 0) >= -1",
            name=op.f("ck_user_usage_override_limits_range"),
        ),
        sa.CheckConstraint(
            "usage_campaigns_current >= 0 AND usage_creators_current_month >= 0 AND enrichments_current_month >= 0",
            name=op.f("ck_user_usage_counters_non_negative"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_user_usage_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_usage")),
        sa.UniqueConstraint("user_id", name=op.f("uq_user_usage_user_id")),
    )
    op.create_index(
        "ix_user_usage_usage_reset_date", "user_usage", ["usage_reset_date"], unique=False
    )
    op.create_table(
        "list_items",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("list_id", sa.Uuid(), nullable=False),
        sa.Column("creator_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("bucket", sa.String(length=9), server_default="backlog", nullable=False),
        sa.Column("added_by", sa.Uuid(), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column(
            "metrics_snapshot",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "custom_fields",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("pinned", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("last_contacted_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "bucket IN ('backlog', 'shortlist', 'contacted', 'responded', 'booked', 'rejected')",
            name=op.f("ck_list_items_bucket_allowed"),
        ),
        sa.ForeignKeyConstraint(
            ["added_by"],
            ["users.id"],
            name=op.f("fk_list_items_added_by_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["creator_id"],
            ["creator_profiles.id"],
            name=op.f("fk_list_items_creator_id_creator_profiles"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["list_id"],
            ["creator_lists.id"],
            name=op.f("fk_list_items_list_id_creator_lists"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_list_items")),
        sa.UniqueConstraint("list_id", "creator_id", name=op.f("uq_list_items_list_id_creator_id")),
    )
    op.create_index(op.f("ix_list_items_added_by"), "list_items", ["added_by"], unique=False)
    op.create_index(op.f("ix_list_items_creator_id"), "list_items", ["creator_id"], unique=False)
    op.create_index(
        "ix_list_items_list_id_bucket", "list_items", ["list_id", "bucket"], unique=False
    )
    op.create_index(
        "ix_list_items_list_id_position", "list_items", ["list_id", "position"], unique=False
    )
    op.create_table(
        "scraping_jobs",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("campaign_id", sa.Uuid(), nullable=False),
        sa.Column("run_id", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=10), server_default="pending", nullable=False),
        sa.Column("platform", sa.String(length=9), nullable=False),
        sa.Column("search_type", sa.String(length=7), server_default="keyword", nullable=False),
        sa.Column("keywords", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("region", sa.String(length=10), server_default="US", nullable=False),
        sa.Column("target_username", sa.Text(), nullable=True),
        sa.Column(
            "search_params",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("processed_runs", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("processed_results", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("target_results", sa.Integer(), server_default=sa.text("1000"), nullable=False),
        sa.Column("cursor", sa.Integer(), server_default=sa.text("0"), nullable=True),
        sa.Column(
            "progress",
            sa.Numeric(precision=5, scale=2),
            server_default=sa.text("0"),
            nullable=False,
        ),
        sa.Column("reservation_id", sa.Uuid(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("timeout_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "keywords IS NULL OR jsonb_typeof(keywords) = 'array'",
            name=op.f("ck_scraping_jobs_keywords_is_array"),
        ),
        sa.CheckConstraint(
            "platform IN ('instagram', 'tiktok', 'youtube')",
            name=op.f("ck_scraping_jobs_platform_allowed"),
        ),
        sa.CheckConstraint(
            "search_type IN ('keyword', 'similar')",
            name=op.f("ck_scraping_jobs_search_type_allowed"),
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'processing', 'completed', 'error', 'timeout', 'cancelled')",
            name=op.f("ck_scraping_jobs_status_allowed"),
        ),
        sa.CheckConstraint(
            "processed_results >= 0 AND processed_runs >= 0",
            name=op.f("ck_scraping_jobs_counters_non_negative"),
        ),
        sa.CheckConstraint(
            "progress >= 0 AND progress <= 100", name=op.f("ck_scraping_jobs_progress_range")
        ),
        sa.CheckConstraint(
            "target_results BETWEEN 1 AND 1000", name=op.f("ck_scraping_jobs_target_results_range")
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_scraping_jobs_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_scraping_jobs_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scraping_jobs")),
    )
    op.create_index(
        "ix_scraping_jobs_campaign_id_created_at",
        "scraping_jobs",
        ["campaign_id", "created_at"],
        unique=False,
    )
    op.create_index(
        "ix_scraping_jobs_keywords_gin",
        "scraping_jobs",
        ["keywords"],
        unique=False,
        postgresql_using="gin",
        postgresql_ops={"keywords": "jsonb_path_ops"},
    )
    op.create_index(
        "ix_scraping_jobs_search_params_gin",
        "scraping_jobs",
        ["search_params"],
        unique=False,
        postgresql_using="gin",
    )
    op.create_index(
        "ix_scraping_jobs_timeout_at_live",
        "scraping_jobs",
        ["timeout_at"],
        unique=False,
        postgresql_where=sa.text("status IN ('pending', 'processing')"),
    )
    op.create_index(
        "ix_scraping_jobs_user_id_created_at",
        "scraping_jobs",
        ["user_id", "created_at"],
        unique=False,
    )
    op.create_index(
        "ix_scraping_jobs_user_id_status", "scraping_jobs", ["user_id", "status"], unique=False
    )
    op.create_table(
        "scraping_job_creators",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("platform", sa.String(length=9), nullable=False),
        sa.Column("creator_key", sa.String(length=255), nullable=False),
        sa.CheckConstraint(
            "creator_key = lower(btrim(creator_key)) AND creator_key <> ''",
            name=op.f("ck_scraping_job_creators_creator_key_normalised"),
        ),
        sa.CheckConstraint(
            "platform IN ('instagram', 'tiktok', 'youtube')",
            name=op.f("ck_scraping_job_creators_platform_allowed"),
        ),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["scraping_jobs.id"],
            name=op.f("fk_scraping_job_creators_job_id_scraping_jobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scraping_job_creators")),
        sa.UniqueConstraint(
            "job_id",
            "platform",
            "creator_key",
            name=op.f("uq_scraping_job_creators_job_id_platform_creator_key"),
        ),
    )
    op.create_table(
        "scraping_results",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("batch_no", sa.Integer(), nullable=False),
        sa.Column("first_ordinal", sa.Integer(), nullable=False),
        sa.Column("creator_count", sa.Integer(), nullable=False),
        sa.Column("creators", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.CheckConstraint(
            "jsonb_typeof(creators) = 'array' AND jsonb_array_length(creators) = creator_count",
            name=op.f("ck_scraping_results_creators_match_count"),
        ),
        sa.CheckConstraint(
            "creator_count BETWEEN 1 AND 250",
            name=op.f("ck_scraping_results_creator_count_bounded"),
        ),
        sa.CheckConstraint(
            "first_ordinal >= 0 AND batch_no >= 0",
            name=op.f("ck_scraping_results_ordinals_non_negative"),
        ),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["scraping_jobs.id"],
            name=op.f("fk_scraping_results_job_id_scraping_jobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scraping_results")),
        sa.UniqueConstraint("job_id", "batch_no", name=op.f("uq_scraping_results_job_id_batch_no")),
        sa.UniqueConstraint(
            "job_id", "first_ordinal", name=op.f("uq_scraping_results_job_id_first_ordinal")
        ),
    )

    create_updated_at_function()
    for table in TABLES:
        add_updated_at_trigger(table)
    seed_plans()


def downgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.drop_table("scraping_results")
    op.drop_table("scraping_job_creators")
    op.drop_index("ix_scraping_jobs_user_id_status", table_name="scraping_jobs")
    op.drop_index("ix_scraping_jobs_user_id_created_at", table_name="scraping_jobs")
    op.drop_index(
        "ix_scraping_jobs_timeout_at_live",
        table_name="scraping_jobs",
        postgresql_where=sa.text("status IN ('pending', 'processing')"),
    )
    op.drop_index(
        "ix_scraping_jobs_search_params_gin", table_name="scraping_jobs", postgresql_using="gin"
    )
    op.drop_index(
        "ix_scraping_jobs_keywords_gin",
        table_name="scraping_jobs",
        postgresql_using="gin",
        postgresql_ops={"keywords": "jsonb_path_ops"},
    )
    op.drop_index("ix_scraping_jobs_campaign_id_created_at", table_name="scraping_jobs")
    op.drop_table("scraping_jobs")
    op.drop_index("ix_list_items_list_id_position", table_name="list_items")
    op.drop_index("ix_list_items_list_id_bucket", table_name="list_items")
    op.drop_index(op.f("ix_list_items_creator_id"), table_name="list_items")
    op.drop_index(op.f("ix_list_items_added_by"), table_name="list_items")
    op.drop_table("list_items")
    op.drop_index("ix_user_usage_usage_reset_date", table_name="user_usage")
    op.drop_table("user_usage")
    op.drop_table("user_system_data")
    op.drop_index("ix_user_subscriptions_status_trial_end_date", table_name="user_subscriptions")
    op.drop_index(op.f("ix_user_subscriptions_intended_plan"), table_name="user_subscriptions")
    op.drop_index(op.f("ix_user_subscriptions_current_plan"), table_name="user_subscriptions")
    op.drop_table("user_subscriptions")
    op.drop_index(
        "uq_user_billing_stripe_subscription_id",
        table_name="user_billing",
        postgresql_where=sa.text("stripe_subscription_id IS NOT NULL"),
    )
    op.drop_table("user_billing")
    op.drop_index(op.f("ix_usage_reservations_user_id"), table_name="usage_reservations")
    op.drop_index(
        "ix_usage_reservations_expires_at_reserved",
        table_name="usage_reservations",
        postgresql_where=sa.text("status = 'reserved'"),
    )
    op.drop_table("usage_reservations")
    op.drop_index("ix_creator_lists_user_id_is_archived_updated_at", table_name="creator_lists")
    op.drop_table("creator_lists")
    op.drop_index("ix_campaigns_user_id_status_created_at", table_name="campaigns")
    op.drop_index("ix_campaigns_user_id_created_at", table_name="campaigns")
    op.drop_table("campaigns")
    op.drop_index("ix_webhook_events_status_created_at", table_name="webhook_events")
    op.drop_table("webhook_events")
    op.drop_index("ix_users_email_lower", table_name="users")
    op.drop_table("users")
    op.drop_table("system_configurations")
    op.drop_index("ix_subscription_plans_is_active_display_order", table_name="subscription_plans")
    op.drop_table("subscription_plans")
    op.drop_table("logging_configurations")
    op.drop_index("ix_inbox_created_at", table_name="inbox")
    op.drop_table("inbox")
    op.drop_index("ix_events_user_id_occurred_at", table_name="events")
    op.drop_index("ix_events_type_occurred_at", table_name="events")
    op.drop_index(
        "ix_events_seq_unpublished",
        table_name="events",
        postgresql_where=sa.text("published_at IS NULL"),
    )
    op.drop_index("ix_events_published_at", table_name="events")
    op.drop_index("ix_events_aggregate_type_aggregate_id", table_name="events")
    op.drop_table("events")
    op.drop_index("ix_dead_letters_status_created_at", table_name="dead_letters")
    op.drop_index(op.f("ix_dead_letters_event_id"), table_name="dead_letters")
    op.drop_table("dead_letters")
    op.drop_index("ix_creator_profiles_platform_handle", table_name="creator_profiles")
    op.drop_table("creator_profiles")
    op.drop_index(
        "uq_background_jobs_dedupe_key_live",
        table_name="background_jobs",
        postgresql_where=sa.text("status IN ('pending', 'processing')"),
    )
    op.drop_index(
        "ix_background_jobs_service_due",
        table_name="background_jobs",
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.drop_index("ix_background_jobs_job_type_status", table_name="background_jobs")
    op.drop_table("background_jobs")
    drop_updated_at_function()
