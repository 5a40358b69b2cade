"""The scraping service's use cases, one module per concern."""

from .enrichments import EnrichmentService, EnrichmentView, EnrichOutcome
from .jobs import JobService, WorkOutcome
from .results import ResultsService

__all__ = [
    "EnrichOutcome",
    "EnrichmentService",
    "EnrichmentView",
    "JobService",
    "ResultsService",
    "WorkOutcome",
]
