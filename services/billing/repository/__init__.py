"""Every SQL statement of the billing service, one module per concern: usage counters and
reservations, accounts (plans, status, checkout, provisioning), subscription state, and
Stripe deliveries."""

from .accounts import AccountRepository
from .subscriptions import SubscriptionRepository
from .usage import COUNTER, Usage, UsageRepository
from .webhooks import WebhookRepository

__all__ = [
    "COUNTER",
    "AccountRepository",
    "SubscriptionRepository",
    "Usage",
    "UsageRepository",
    "WebhookRepository",
]
