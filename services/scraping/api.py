"""The scraping HTTP API (port 8004): search jobs and the pages of creators they found."""

from fastapi import FastAPI

from shared.settings import Settings
from shared.web import create_app as create_service_app

from .routes import creators, enrichments, jobs


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service_app(
        "scraping",
        routers=[jobs.router, enrichments.router, creators.router],
        description="Search jobs, their results, creator enrichment and the creator providers.",
        settings=settings,
    )
