"""``/billing``: the caller's billing status and Stripe checkout."""

from fastapi import APIRouter, Request

from shared.web import CallerId, CurrentUser, Idempotent, ReadSessionDep, SessionDep

from ..schemas import BillingStatusOut, CheckoutIn, CheckoutOut
from ..service import account

router = APIRouter(prefix="/billing", tags=["billing"])


@router.get("/status", response_model=BillingStatusOut)
async def billing_status(user_id: CallerId, session: ReadSessionDep) -> BillingStatusOut:
    """Plan, subscription and trial status, whether access is allowed, and usage by resource."""
    return await account.billing_status(session, user_id)


@router.post("/checkout", response_model=CheckoutOut)
async def checkout(
    body: CheckoutIn,
    principal: CurrentUser,
    user_id: CallerId,
    session: SessionDep,
    request: Request,
    operation: Idempotent,
) -> CheckoutOut:
    """A Stripe Checkout session (7-day trial for a first subscription only), or an in-place
    plan change when the user already has a live subscription."""
    settings = request.app.state.settings
    return await account.checkout(
        session, settings, user_id, principal.clerk_user_id, body, operation=operation.id
    )
