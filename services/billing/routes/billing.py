"""``/billing``: the caller's billing status and Stripe checkout."""

from typing import Annotated

from fastapi import APIRouter, Query, Request

from shared.web import (
    CallerId,
    CurrentUser,
    Idempotent,
    ReadSessionDep,
    SessionDep,
    error_responses,
)

from ..errors import BillingProviderUnavailable, UnknownPlan
from ..schemas import BillingStatusOut, CheckoutIn, CheckoutOut, UsageHistoryOut
from ..service import account

router = APIRouter(prefix="/billing", tags=["billing"])
MAX_HISTORY_MONTHS = 36


@router.get("/status", response_model=BillingStatusOut, summary="My plan, trial and usage")
async def billing_status(user_id: CallerId, session: ReadSessionDep) -> BillingStatusOut:
    """Plan, subscription and trial status, whether access is allowed, and usage by resource."""
    return await account.billing_status(session, user_id)


@router.get(
    "/usage/history",
    response_model=UsageHistoryOut,
    summary="My usage by month",
)
async def usage_history(
    user_id: CallerId,
    session: ReadSessionDep,
    months: Annotated[int, Query(ge=1, le=MAX_HISTORY_MONTHS)] = 12,
) -> UsageHistoryOut:
    """Campaigns, creators and enrichments used in each of the last ``months`` calendar months
    (UTC, 1 to 36, default 12), newest first: what settled reservations counted, in one
    statement."""
    return await account.usage_history(session, user_id, months)


@router.post(
    "/checkout",
    response_model=CheckoutOut,
    summary="Buy or change a plan",
    responses=error_responses(UnknownPlan, BillingProviderUnavailable),
)
async def checkout(
    body: CheckoutIn,
    principal: CurrentUser,
    user_id: CallerId,
    session: SessionDep,
    request: Request,
    operation: Idempotent,
) -> CheckoutOut:
    """A Stripe Checkout session to pay at (``checkout_url``; a 7-day trial for a first
    subscription only), or an in-place plan change when the user already has a live
    subscription. In development without ``STRIPE_SECRET_KEY`` the ``checkout_url`` is
    billing's own payment page (``GET /dev/checkout/{session_id}``); elsewhere, without Stripe
    configured, 503 ``billing_provider_unavailable``."""
    settings = request.app.state.settings
    return await account.checkout(
        session,
        settings,
        user_id,
        principal.clerk_user_id,
        body,
        local_page=lambda session_id: str(request.url_for("checkout_page", session_id=session_id)),
        operation=operation.id,
    )
