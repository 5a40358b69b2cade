"""Every SQL statement of the scraping service, one module per concern."""

from .jobs import JobRepository, ResultsPage, validate_window
from .results import COUNT_CAP, NarrowedPage, ResultsRepository

__all__ = [
    "COUNT_CAP",
    "JobRepository",
    "NarrowedPage",
    "ResultsPage",
    "ResultsRepository",
    "validate_window",
]
