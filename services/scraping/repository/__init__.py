"""Every SQL statement of the scraping service, one module per concern."""

from .jobs import JobRepository, ResultsPage, validate_window

__all__ = ["JobRepository", "ResultsPage", "validate_window"]
