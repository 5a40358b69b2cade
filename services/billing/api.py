"""The billing HTTP API: plans, billing status, Stripe checkout and the Stripe webhook."""

from fastapi import FastAPI

from shared.settings import Settings, get_settings
from shared.web import create_app as create_service_app

from .routes import billing, local_checkout, plans, webhooks


def create_app(settings: Settings | None = None) -> FastAPI:
    routers = [plans.router, billing.router, webhooks.router]
    # Billing's own checkout page exists only where it sells plans itself (development
    # without a Stripe key); elsewhere its routes are absent, so they answer 404.
    if (settings or get_settings()).local_billing:
        routers.append(local_checkout.router)
    return create_service_app(
        "billing",
        routers=routers,
        description="Plans, subscriptions (Stripe), trials and usage limits.",
        settings=settings,
    )
