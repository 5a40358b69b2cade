"""``scout billing subscribe``: give a user a plan in development, as a paid checkout would.

It sends what Stripe sends after a paid subscription checkout — ``checkout.session.completed``
and ``customer.subscription.created``, with the configured price ids, signed with
``STRIPE_WEBHOOK_SECRET`` — to the running billing API's ``POST /webhooks/stripe``, so the plan
changes through the same code as a real payment (the same events billing's local checkout page
sends). Only where billing sells plans itself: ``SCOUT_ENV=development`` without a Stripe key.
"""

import asyncio
import time
from enum import StrEnum
from typing import Annotated

import httpx
import typer

from services.billing import local_stripe
from shared.models.enums import BillingInterval, PlanKey
from shared.settings import Settings, get_settings
from tooling.cli.output import console, err_console

app = typer.Typer(help="Billing in development: plans without Stripe.", no_args_is_help=True)

TRIAL_DAYS = 7


class StartStatus(StrEnum):
    active = "active"
    trialing = "trialing"


class SubscribeFailed(Exception):
    """Billing did not accept the events (or could not be reached); the message says why."""


@app.command()
def subscribe(
    clerk_id: Annotated[str, typer.Argument(help="The user's Clerk id (user_…).")],
    plan: Annotated[PlanKey, typer.Option(help="The plan to put the user on.")],
    interval: Annotated[BillingInterval, typer.Option(help="How often it is billed.")] = (
        BillingInterval.monthly
    ),
    status: Annotated[
        StartStatus, typer.Option(help=f"active, or trialing ({TRIAL_DAYS}-day trial).")
    ] = StartStatus.active,
    billing_url: Annotated[
        str | None, typer.Option(help="The billing API. Default: http://127.0.0.1:$BILLING_PORT.")
    ] = None,
    wait: Annotated[
        float, typer.Option(help="Seconds to keep retrying while billing does not know the user.")
    ] = 30.0,
) -> None:
    """Put a user on a plan as if they had paid at Stripe (development without Stripe only)."""
    settings = get_settings()
    if not settings.local_billing:
        err_console.print(
            "scout billing subscribe is for development without Stripe (SCOUT_ENV=development,"
            f" STRIPE_SECRET_KEY unset); here SCOUT_ENV={settings.scout_env}"
            + (" and STRIPE_SECRET_KEY is set." if settings.stripe_secret_key else ".")
        )
        raise typer.Exit(2)
    url = (billing_url or f"http://127.0.0.1:{settings.billing_port}").rstrip("/")
    try:
        plan_name = asyncio.run(_subscribe(settings, url, clerk_id, plan, interval, status, wait))
    except SubscribeFailed as exc:
        err_console.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from exc
    console.print(
        f"{clerk_id} is on {plan_name} ({status.value}, billed {interval.value}):"
        f" billing accepted the signed Stripe events at {url}/webhooks/stripe."
    )


async def _subscribe(
    settings: Settings,
    url: str,
    clerk_id: str,
    plan: PlanKey,
    interval: BillingInterval,
    status: StartStatus,
    wait: float,
) -> str:
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        offer = await _plan(client, url, plan)
        purchase = local_stripe.Purchase(
            clerk_user_id=clerk_id,
            plan=plan.value,
            interval=interval,
            trial_days=TRIAL_DAYS if status == StartStatus.trialing else 0,
            customer=local_stripe.customer_id(clerk_id),
            expires_at=int(time.time()) + local_stripe.SESSION_TTL_SECONDS,
        )
        # A session id of its own: the events' ids derive from it, so a retry is a duplicate.
        session_id = local_stripe.new_session(settings.stripe_webhook_secret, purchase)
        price = offer["monthly_price" if interval == BillingInterval.monthly else "yearly_price"]
        events = local_stripe.purchase_events(
            purchase, session_id=session_id, status=status.value, unit_amount=price
        )
        deadline = time.monotonic() + wait
        while True:
            answers = await local_stripe.deliver(client, events, settings.stripe_webhook_secret)
            last = answers[-1]
            if last.status_code == 200:
                return offer["display_name"]
            # 5xx: billing failed to apply it (typically: it has not provisioned this user yet,
            # which follows the user's creation by an event); Stripe would retry, so do we.
            if last.status_code < 500 or time.monotonic() > deadline:
                detail = _detail(last)
                hint = (
                    f" Does {clerk_id} exist? A first GET /me with their token creates the user."
                    if "No user" in detail or "no billing rows" in detail
                    else ""
                )
                raise SubscribeFailed(
                    f"billing did not accept {events[len(answers) - 1]['type']}:"
                    f" {last.status_code} {detail}{hint}"
                )
            await asyncio.sleep(0.5)


async def _plan(client: httpx.AsyncClient, url: str, plan: PlanKey) -> dict:
    try:
        answer = await client.get("/plans")
    except httpx.HTTPError as exc:
        raise SubscribeFailed(
            f"billing does not answer at {url} ({type(exc).__name__}): is `scout dev` running?"
            " (--billing-url or BILLING_PORT name another address)"
        ) from exc
    offered = {p["plan_key"]: p for p in answer.json().get("items", [])}
    if plan.value not in offered:
        raise SubscribeFailed(
            f"{plan.value} is not on offer; choose one of {', '.join(offered) or '(none)'}"
        )
    return offered[plan.value]


def _detail(answer: httpx.Response) -> str:
    try:
        return str(answer.json().get("detail", answer.text))
    except ValueError:
        return answer.text[:300]
