"""The official ``stripe`` library, pointed at ``STRIPE_API_BASE`` (a local fake in tests).

Price ids ↔ plans: ``STRIPE_PRICE_<PLAN>_<MONTHLY|YEARLY>`` env vars, default
``price_<plan>_<monthly|yearly>``. An unknown price maps to no plan (never a free one).
Scout spells the billing interval ``monthly`` / ``yearly`` everywhere; Stripe's recurring
interval (``month`` / ``year``) is translated here, where Stripe objects are read and made.
"""

import os

import stripe

from shared.models.enums import BillingInterval, PlanKey
from shared.settings import Settings

from .errors import BillingProviderUnavailable

# Scout's interval → Stripe's ``price.recurring.interval``.
STRIPE_INTERVAL = {BillingInterval.monthly: "month", BillingInterval.yearly: "year"}
FROM_STRIPE_INTERVAL = {v: k for k, v in STRIPE_INTERVAL.items()}


def price_id(plan: str, interval: str) -> str:
    """The Stripe price of ``plan`` billed ``interval`` (``monthly`` or ``yearly``)."""
    return os.environ.get(f"STRIPE_PRICE_{plan.upper()}_{interval.upper()}") or (
        f"price_{plan}_{interval}"
    )


def plan_for_price(price: str | None) -> tuple[str, BillingInterval] | None:
    """``(plan_key, interval)`` of a price id, or None when it maps to no plan."""
    if not price:
        return None
    for plan in PlanKey:
        for interval in BillingInterval:
            if price_id(plan.value, interval.value) == price:
                return plan.value, interval
    return None


# Subscription states Stripe will never charge again: cancelling one is already done.
ENDED = frozenset({"canceled", "incomplete_expired"})


def unavailable(exc: stripe.StripeError) -> bool:
    """Stripe could not answer now (unreachable, timed out, 5xx, 429): the same call will go
    through later. Anything else (a 4xx: bad key, bad request) will not change by waiting."""
    if isinstance(exc, stripe.APIConnectionError | stripe.RateLimitError):
        return True
    return exc.http_status is not None and (exc.http_status >= 500 or exc.http_status == 429)


def configured(settings: Settings) -> bool:
    return bool(settings.stripe_secret_key)


def client(settings: Settings) -> stripe.StripeClient:
    """A Stripe client (async methods via httpx); 503 ``billing_provider_unavailable`` if unset."""
    if not settings.stripe_secret_key:
        raise BillingProviderUnavailable()
    kwargs = {}
    if settings.stripe_api_base:
        kwargs["base_addresses"] = {"api": settings.stripe_api_base.rstrip("/")}
    return stripe.StripeClient(
        settings.stripe_secret_key,
        http_client=stripe.HTTPXClient(),
        max_network_retries=1,
        **kwargs,
    )
