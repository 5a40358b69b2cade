"""The scraping service's use cases, one module per concern."""

from .jobs import JobService, WorkOutcome
from .results import ResultsService

__all__ = ["JobService", "ResultsService", "WorkOutcome"]
