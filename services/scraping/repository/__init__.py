"""Every SQL statement of the scraping service, one module per concern."""

from .enrichments import EnrichmentRepository, ItemView
from .jobs import JobRepository, ResultsPage, validate_window

__all__ = [
    "EnrichmentRepository",
    "ItemView",
    "JobRepository",
    "ResultsPage",
    "validate_window",
]
