"""Tables owned by the billing service."""

import uuid
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlmodel import Field, Relationship

from .base import TableBase, counter, enum_column, jsonb, one_of, tz_timestamp, user_fk
from .enums import (
    BillingInterval,
    BillingSyncStatus,
    ReservationStatus,
    SubscriptionStatus,
    UsageResource,
)

if TYPE_CHECKING:
    from .identity import User


def _limit(description: str):
    return Field(
        sa_type=sa.Integer,
        nullable=False,
        sa_column_kwargs={"comment": f"{description}; -1 = unlimited"},
    )


class SubscriptionPlan(TableBase, table=True):
    """The six plans (seeded by the first migration). Prices are in cents."""

    __tablename__ = "subscription_plans"
    __table_args__ = (
        sa.CheckConstraint("campaigns_limit >= -1", name="campaigns_limit_range"),
        sa.CheckConstraint("creators_limit >= -1", name="creators_limit_range"),
        sa.CheckConstraint("enrichments_limit >= -1", name="enrichments_limit_range"),
        sa.CheckConstraint("price_monthly >= 0 AND price_yearly >= 0", name="prices_positive"),
        sa.Index("ix_subscription_plans_is_active_display_order", "is_active", "display_order"),
    )

    plan_key: str = Field(sa_type=sa.String(50), nullable=False, unique=True)
    plan_name: str = Field(sa_type=sa.Text, nullable=False)
    description: str | None = Field(default=None, sa_type=sa.Text)
    campaigns_limit: int = _limit("campaigns at once")
    creators_limit: int = _limit("creators per month")
    enrichments_limit: int = _limit("enrichments per month")
    features: dict[str, Any] = jsonb()
    price_monthly: int = Field(sa_type=sa.Integer, nullable=False)
    price_yearly: int = Field(sa_type=sa.Integer, nullable=False)
    stripe_price_id_monthly: str | None = Field(default=None, sa_type=sa.Text)
    stripe_price_id_yearly: str | None = Field(default=None, sa_type=sa.Text)
    is_legacy: bool = Field(
        default=False, nullable=False, sa_column_kwargs={"server_default": sa.false()}
    )
    is_active: bool = Field(
        default=True, nullable=False, sa_column_kwargs={"server_default": sa.true()}
    )
    display_order: int = Field(
        default=0, nullable=False, sa_column_kwargs={"server_default": sa.text("0")}
    )


class UserSubscription(TableBase, table=True):
    """Subscription state. Trial status is derived from these columns, never stored."""

    __tablename__ = "user_subscriptions"
    __table_args__ = (
        one_of("subscription_status", SubscriptionStatus),
        one_of("billing_interval", BillingInterval, nullable=True),
        one_of("billing_sync_status", BillingSyncStatus),
        sa.CheckConstraint(
            "trial_end_date IS NULL OR trial_start_date IS NULL OR trial_end_date >= trial_start_date",
            name="trial_dates_ordered",
        ),
        sa.Index(
            "ix_user_subscriptions_status_trial_end_date", "subscription_status", "trial_end_date"
        ),
    )

    user_id: uuid.UUID = user_fk(unique=True)
    current_plan: str | None = Field(
        default=None,
        sa_type=sa.String(50),
        foreign_key="subscription_plans.plan_key",
        ondelete="RESTRICT",
        index=True,
    )
    intended_plan: str | None = Field(
        default=None,
        sa_type=sa.String(50),
        foreign_key="subscription_plans.plan_key",
        ondelete="RESTRICT",
        index=True,
    )
    subscription_status: str = enum_column(SubscriptionStatus, default=SubscriptionStatus.none)
    trial_start_date: datetime | None = tz_timestamp()
    trial_end_date: datetime | None = tz_timestamp()
    trial_conversion_date: datetime | None = tz_timestamp()
    subscription_cancel_date: datetime | None = tz_timestamp()
    subscription_renewal_date: datetime | None = tz_timestamp()
    billing_interval: str | None = enum_column(BillingInterval, nullable=True)
    current_period_end: datetime | None = tz_timestamp()
    billing_sync_status: str = enum_column(BillingSyncStatus, default=BillingSyncStatus.pending)
    # Creation time of the newest Stripe object applied: an older event never overwrites it.
    stripe_state_at: datetime | None = tz_timestamp()

    user: "User" = Relationship(
        back_populates="subscription", sa_relationship_kwargs={"lazy": "raise"}
    )


class UserBilling(TableBase, table=True):
    """Stripe payment data (1:1 with users)."""

    __tablename__ = "user_billing"
    __table_args__ = (
        sa.CheckConstraint("card_exp_month BETWEEN 1 AND 12", name="card_exp_month_range"),
        sa.CheckConstraint("card_last4 ~ '^[0-9]{4}$'", name="card_last4_digits"),
        sa.Index(
            "uq_user_billing_stripe_subscription_id",
            "stripe_subscription_id",
            unique=True,
            postgresql_where=sa.text("stripe_subscription_id IS NOT NULL"),
        ),
    )

    user_id: uuid.UUID = user_fk(unique=True)
    stripe_customer_id: str | None = Field(default=None, sa_type=sa.Text, unique=True)
    stripe_subscription_id: str | None = Field(default=None, sa_type=sa.Text)
    payment_method_id: str | None = Field(default=None, sa_type=sa.Text)
    card_last4: str | None = Field(default=None, sa_type=sa.String(4))
    card_brand: str | None = Field(default=None, sa_type=sa.String(20))
    card_exp_month: int | None = Field(default=None, sa_type=sa.Integer)
    card_exp_year: int | None = Field(default=None, sa_type=sa.Integer)
    billing_address_city: str | None = Field(default=None, sa_type=sa.Text)
    billing_address_country: str | None = Field(default=None, sa_type=sa.String(2))
    billing_address_postal_code: str | None = Field(default=None, sa_type=sa.String(20))

    user: "User" = Relationship(back_populates="billing", sa_relationship_kwargs={"lazy": "raise"})


class UserUsage(TableBase, table=True):
    """Usage counters. ``plan_*`` columns are per-user overrides; NULL means the plan's limit."""

    __tablename__ = "user_usage"
    __table_args__ = (
        sa.CheckConstraint(
            "usage_campaigns_current >= 0 AND usage_creators_current_month >= 0"
            " AND enrichments_current_month >= 0",
            name="counters_non_negative",
        ),
        sa.CheckConstraint(
            "coalesce(plan_campaigns_limit, 0) >= -1 AND coalesce(plan_creators_limit, 0) >= -1",
            name="override_limits_range",
        ),
        sa.Index("ix_user_usage_usage_reset_date", "usage_reset_date"),
    )

    user_id: uuid.UUID = user_fk(unique=True)
    plan_campaigns_limit: int | None = Field(default=None, sa_type=sa.Integer)
    plan_creators_limit: int | None = Field(default=None, sa_type=sa.Integer)
    plan_features: dict[str, Any] = jsonb()
    usage_campaigns_current: int = Field(
        default=0, nullable=False, sa_column_kwargs={"server_default": sa.text("0")}
    )
    usage_creators_current_month: int = Field(
        default=0, nullable=False, sa_column_kwargs={"server_default": sa.text("0")}
    )
    enrichments_current_month: int = Field(
        default=0, nullable=False, sa_column_kwargs={"server_default": sa.text("0")}
    )
    usage_reset_date: datetime = Field(
        default=None,
        sa_type=sa.DateTime(timezone=True),
        nullable=False,
        sa_column_kwargs={"server_default": sa.func.now()},
    )

    user: "User" = Relationship(back_populates="usage", sa_relationship_kwargs={"lazy": "raise"})


class UsageReservation(TableBase, table=True):
    """Quota held for an operation in flight; unconfirmed ones expire and are given back."""

    __tablename__ = "usage_reservations"
    __table_args__ = (
        sa.UniqueConstraint("user_id", "idempotency_key"),
        one_of("resource", UsageResource),
        one_of("status", ReservationStatus),
        sa.CheckConstraint("amount > 0", name="amount_positive"),
        sa.CheckConstraint(
            "used_amount IS NULL OR (used_amount >= 0 AND used_amount <= amount)",
            name="used_amount_range",
        ),
        sa.Index(
            "ix_usage_reservations_expires_at_reserved",
            "expires_at",
            postgresql_where=sa.text("status = 'reserved'"),
        ),
    )

    user_id: uuid.UUID = user_fk()
    resource: str = enum_column(UsageResource)
    amount: int = Field(sa_type=sa.Integer, nullable=False)
    used_amount: int | None = Field(default=None, sa_type=sa.Integer)
    idempotency_key: str = Field(sa_type=sa.String(200), nullable=False)
    status: str = enum_column(ReservationStatus, default=ReservationStatus.reserved)
    expires_at: datetime = Field(sa_type=sa.DateTime(timezone=True), nullable=False)
    settled_at: datetime | None = tz_timestamp()


class BillingUsageMonth(TableBase, table=True):
    """A user's settled usage of one UTC calendar month (``month`` is its first day): the
    ``used_amount`` of the user's confirmed reservations settled that month, one column per
    resource. Kept by triggers on ``usage_reservations`` (migration 0014) in the same statement
    as the reservations they count; reserving, releasing unused holds and expiring write nothing
    here. ``GET /billing/usage/history`` reads the user's rows of its window, so it costs the
    same whatever the user settled. No row means zeros; ``scout db analyze`` checks every row
    against a recount."""

    __tablename__ = "billing_usage_months"
    __table_args__ = (sa.UniqueConstraint("user_id", "month"),)

    user_id: uuid.UUID = Field(
        sa_type=sa.Uuid, foreign_key="users.id", ondelete="CASCADE", nullable=False
    )
    month: date = Field(sa_type=sa.Date, nullable=False)
    campaigns: int = counter(sa.BigInteger)
    creators: int = counter(sa.BigInteger)
    enrichments: int = counter(sa.BigInteger)
