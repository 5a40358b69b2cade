"""The billing HTTP API: plans, billing status, Stripe checkout and the Stripe webhook."""

from fastapi import FastAPI

from shared.settings import Settings
from shared.web import create_app as create_service_app

from .routes import billing, plans, webhooks


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service_app(
        "billing",
        routers=[plans.router, billing.router, webhooks.router],
        description="Plans, subscriptions (Stripe), trials and usage limits.",
        settings=settings,
    )
