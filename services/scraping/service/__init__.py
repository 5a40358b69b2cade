"""The scraping service's use cases, one module per concern."""

from .enrichments import EnrichmentService, EnrichmentView, EnrichOutcome
from .jobs import JobService, WorkOutcome

__all__ = ["EnrichOutcome", "EnrichmentService", "EnrichmentView", "JobService", "WorkOutcome"]
