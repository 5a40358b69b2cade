"""Request and response models of the billing API (never table models as bodies)."""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.models.enums import (
    BillingInterval,
    PlanKey,
    SubscriptionStatus,
    TrialStatus,
    UsageResource,
)


class PlanOut(BaseModel):
    plan_key: str
    display_name: str
    description: str | None
    monthly_price: int
    yearly_price: int
    campaigns_limit: int
    creators_limit: int
    enrichments_limit: int
    features: dict[str, Any]
    is_legacy: bool


class PlansOut(BaseModel):
    items: list[PlanOut]


class UsageOut(BaseModel):
    used: int  # confirmed usage plus quota held by operations in flight
    limit: int  # -1 = unlimited
    reserved: int  # the part of ``used`` still held by operations in flight


class BillingStatusOut(BaseModel):
    plan: str | None
    subscription_status: SubscriptionStatus
    trial_status: TrialStatus
    trial_ends_at: datetime | None
    trial_days_left: int
    access_allowed: bool
    billing_interval: BillingInterval | None
    current_period_end: datetime | None
    usage: dict[UsageResource, UsageOut]


class CheckoutIn(BaseModel):
    """A plan and how often to pay: both validated (422) before anything else is asked."""

    model_config = ConfigDict(extra="forbid")

    plan: PlanKey
    interval: BillingInterval


class CheckoutOut(BaseModel):
    mode: Literal["checkout", "upgrade"]
    checkout_url: str | None = None
    session_id: str | None = None
    subscription_id: str | None = None
    trial_days: int


class StripeEventData(BaseModel):
    object: dict[str, Any] = Field(
        description="The Stripe object: a checkout session, subscription or invoice."
    )


class StripeEvent(BaseModel):
    """A Stripe webhook delivery, documented only: the route verifies the raw body first.
    Handled types: ``checkout.session.completed``, ``customer.subscription.created|updated|
    deleted|trial_will_end``, ``invoice.payment_succeeded|payment_failed``; others answer 200
    with ``outcome: unhandled``."""

    model_config = ConfigDict(extra="allow")

    id: str = Field(description="`evt_…`: the same id twice is applied once.")
    object: Literal["event"] = "event"
    type: str
    created: int = Field(
        ge=0, le=2**33, description="Unix seconds; an older event never overwrites newer state."
    )
    data: StripeEventData


class UsageMonth(BaseModel):
    month: str = Field(description="calendar month, UTC, as YYYY-MM")
    campaigns: int
    creators: int
    enrichments: int


class UsageHistoryOut(BaseModel):
    months: list[UsageMonth] = Field(description="newest first, months without usage as zeros")
