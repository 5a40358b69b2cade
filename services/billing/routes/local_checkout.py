"""``/dev/checkout``: billing's own payment page, where development has no Stripe.

Only mounted when ``settings.local_billing`` (``SCOUT_ENV=development`` without
``STRIPE_SECRET_KEY``); in ``test`` and ``production`` these routes do not exist. The pages are
plain HTML forms (no script, no external asset), so they work offline and in any browser.
"""

from html import escape
from typing import Annotated

import httpx
from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse

from shared.web import ReadSessionDep, error_responses

from ..errors import CheckoutSessionNotFound, LocalPaymentRejected
from ..local_stripe import Purchase
from ..service import local_checkout

router = APIRouter(prefix="/dev/checkout", tags=["local billing"])

SessionId = Annotated[
    str, Path(max_length=2000, description="The `session_id` POST /billing/checkout answered.")
]

_STYLE = """
body { font-family: system-ui, sans-serif; background: #f6f8fa; margin: 0; }
main { max-width: 28rem; margin: 4rem auto; background: #fff; border-radius: 12px;
       padding: 2rem; box-shadow: 0 1px 4px rgba(0,0,0,.12); }
h1 { font-size: 1.3rem; margin-top: 0; } .price { font-size: 2rem; font-weight: 600; }
.note { color: #57606a; } form { display: inline; }
button { font-size: 1rem; padding: .6rem 1.2rem; border-radius: 6px; border: 1px solid #999;
         margin: 1rem .5rem 0 0; cursor: pointer; }
button#complete { background: #1f883d; color: #fff; border-color: #1f883d; }
"""


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    html = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)} · Scout local billing</title><style>{_STYLE}</style></head>"
        f"<body><main>{body}</main></body></html>"
    )
    return HTMLResponse(html, status_code=status)


def _dollars(cents: int) -> str:
    return f"${cents / 100:,.2f}"


def _summary(purchase: Purchase, plan) -> str:
    per = "month" if purchase.interval == "monthly" else "year"
    price = local_checkout.price_of(plan, purchase)
    trial = (
        f"<p>{purchase.trial_days}-day free trial: nothing is charged today.</p>"
        if purchase.trial_days
        else "<p>No trial (trials are for a first subscription).</p>"
    )
    return (
        f"<h1>Subscribe to {escape(plan['display_name'])}</h1>"
        f'<p class="price">{_dollars(price)} <small>/ {per}</small></p>'
        f"<p>Plan <code>{escape(purchase.plan)}</code>, billed {escape(purchase.interval)},"
        f" for <code>{escape(purchase.clerk_user_id)}</code>.</p>{trial}"
    )


@router.get(
    "/{session_id}",
    response_class=HTMLResponse,
    summary="The local checkout page",
    responses=error_responses(CheckoutSessionNotFound),
)
async def checkout_page(
    session_id: SessionId, session: ReadSessionDep, request: Request
) -> HTMLResponse:
    """The page `checkout_url` points at when billing sells plans itself (development without a
    Stripe key): the plan, its price and trial, and "Complete payment" / "Cancel" buttons."""
    settings = request.app.state.settings
    purchase, plan = await local_checkout.open_session(session, settings, session_id)
    return _page(
        "Checkout",
        _summary(purchase, plan)
        + '<p class="note">Local billing: no card is asked for and no money moves. Completing'
        " sends Stripe's webhooks, signed, to this billing service.</p>"
        f'<form method="post" action="/dev/checkout/{escape(session_id)}/complete">'
        '<button id="complete" type="submit">Complete payment</button></form>'
        f'<form method="post" action="/dev/checkout/{escape(session_id)}/cancel">'
        '<button id="cancel" type="submit">Cancel</button></form>',
    )


@router.post(
    "/{session_id}/complete",
    response_class=HTMLResponse,
    summary="Pay a local checkout session",
    responses=error_responses(CheckoutSessionNotFound, LocalPaymentRejected),
)
async def complete_checkout(
    session_id: SessionId, session: ReadSessionDep, request: Request
) -> HTMLResponse:
    """What paying at Stripe does: `checkout.session.completed` and
    `customer.subscription.created`, signed with `STRIPE_WEBHOOK_SECRET`, go to this service's
    `POST /webhooks/stripe`, which changes the plan. Completing a session twice changes nothing
    more (the same event ids are duplicates)."""
    settings = request.app.state.settings
    purchase, plan = await local_checkout.open_session(session, settings, session_id)
    # The webhooks go through this very app (middleware, route, signature check included).
    transport = httpx.ASGITransport(app=request.app)
    async with httpx.AsyncClient(transport=transport, base_url=str(request.base_url)) as client:
        status = await local_checkout.complete(client, settings, session_id, purchase, plan)
    return _page(
        "Payment complete",
        f"<h1>Payment complete</h1><p>You are on <strong>{escape(plan['display_name'])}</strong>"
        f' ({escape(status)}).</p><p class="note">GET /billing/status shows the plan.</p>',
    )


@router.post(
    "/{session_id}/cancel",
    response_class=HTMLResponse,
    summary="Leave a local checkout unpaid",
    responses=error_responses(CheckoutSessionNotFound),
)
async def cancel_checkout(
    session_id: SessionId, session: ReadSessionDep, request: Request
) -> HTMLResponse:
    """Nothing is sent and nothing changes, as when a customer closes Stripe's page; the
    session stays payable until it expires."""
    await local_checkout.open_session(session, request.app.state.settings, session_id)
    return _page("Checkout cancelled", "<h1>Checkout cancelled</h1><p>Nothing was charged.</p>")
