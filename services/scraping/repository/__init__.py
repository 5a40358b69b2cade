"""Every SQL statement of the scraping service, one module per concern."""

from shared.queries.pagination import COUNT_CAP

from .enrichments import EnrichmentRepository, ItemView
from .jobs import JobRepository, ResultsPage, validate_window
from .results import NarrowedPage, ResultsRepository
from .work import WorkRepository

__all__ = [
    "COUNT_CAP",
    "EnrichmentRepository",
    "ItemView",
    "JobRepository",
    "NarrowedPage",
    "ResultsPage",
    "ResultsRepository",
    "WorkRepository",
    "validate_window",
]
