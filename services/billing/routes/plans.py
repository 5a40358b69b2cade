"""``/plans``: the plans on offer (public)."""

from fastapi import APIRouter

from shared.web import ReadSessionDep

from ..schemas import PlanOut, PlansOut
from ..service import account

router = APIRouter(tags=["billing"])


@router.get("/plans", response_model=PlansOut, summary="The plans on offer")
async def list_plans(session: ReadSessionDep) -> PlansOut:
    """Active plans in display order, with prices in cents and limits (``-1`` = unlimited).
    Public: no token needed."""
    return PlansOut(items=[PlanOut(**row) for row in await account.plans(session)])
