"""Every SQL statement of the campaign service, one module per resource; routes, the service,
handlers and ``scout db perf`` all run these (no other copy of a campaign query exists)."""

from .campaigns import CampaignRepository, JobSummary
from .dashboard import DashboardRepository
from .enrich import EnrichRepository
from .lists import EXPORT_COLUMNS, ListItemRow, ListRepository, export_statement

__all__ = [
    "EXPORT_COLUMNS",
    "CampaignRepository",
    "DashboardRepository",
    "EnrichRepository",
    "JobSummary",
    "ListItemRow",
    "ListRepository",
    "export_statement",
]
