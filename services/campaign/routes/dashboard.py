"""``/dashboard``: the caller's overview, computed in SQL in one statement."""

from fastapi import APIRouter

from shared.web import CallerId, ReadSessionDep

from .. import service
from ..schemas import Dashboard

router = APIRouter(tags=["dashboard"])


@router.get("/dashboard", summary="My overview")
async def get_dashboard(session: ReadSessionDep, user_id: CallerId) -> Dashboard:
    """Campaigns by status, searches and creators found in the last 30 days (whole UTC days:
    today and the 29 before it), the list pipeline by bucket and recent activity."""
    return Dashboard(**await service.dashboard(session, user_id))
