"""The campaign service's HTTP API: campaigns, creator lists and the dashboard."""

from fastapi import FastAPI

from shared.settings import Settings
from shared.web import create_app as create_service_app

from .routes import campaigns, dashboard, lists


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service_app(
        "campaign",
        routers=[campaigns.router, lists.router, dashboard.router],
        description="Campaigns, creator lists with CSV export, and the dashboard.",
        settings=settings,
    )
