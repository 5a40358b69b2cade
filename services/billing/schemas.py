"""Request and response models of the billing API (never table models as bodies)."""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from shared.models.enums import SubscriptionStatus, TrialStatus, UsageResource


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
    billing_interval: str | None
    current_period_end: datetime | None
    usage: dict[UsageResource, UsageOut]


class CheckoutIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    plan: str
    interval: Literal["monthly", "yearly"]


class CheckoutOut(BaseModel):
    mode: Literal["checkout", "upgrade"]
    checkout_url: str | None = None
    session_id: str | None = None
    subscription_id: str | None = None
    trial_days: int
