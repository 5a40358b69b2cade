"""``/dashboard``: the caller's overview, computed in SQL in one statement."""

from fastapi import APIRouter

from shared.web import ReadSessionDep

from ..repository import DashboardRepository
from ..schemas import Dashboard
from .deps import ReaderId

router = APIRouter(tags=["dashboard"])


@router.get("/dashboard")
async def get_dashboard(session: ReadSessionDep, user_id: ReaderId) -> Dashboard:
    """Campaigns by status, searches and creators found in the last 30 days, the list pipeline
    by bucket and recent activity."""
    return Dashboard(**await DashboardRepository(session).overview(user_id))
