"""The scraping service's use cases, one module per concern."""

from .jobs import JobService, WorkOutcome

__all__ = ["JobService", "WorkOutcome"]
