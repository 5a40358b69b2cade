"""Every SQL statement of the billing service, one module per concern: usage counters and
reservations, accounts (plans, status, checkout, provisioning), subscription state, and
Stripe deliveries."""

from .accounts import AccountRepository
from .subscriptions import SubscriptionRepository
from .usage import COUNTER, HISTORY, Usage, UsageRepository, usage_history
from .webhooks import WebhookRepository

__all__ = [
    "COUNTER",
    "HISTORY",
    "AccountRepository",
    "SubscriptionRepository",
    "Usage",
    "UsageRepository",
    "WebhookRepository",
    "usage_history",
]
