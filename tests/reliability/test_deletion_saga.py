"""Deleting a user end to end: Clerk's webhook, every service's purge and acknowledgement, and
a deletion that waits on Stripe — visible in ``scout user inspect`` and the identity worker's
metrics while it waits, completed once Stripe answers."""

import asyncio
import json

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.identity.service import purge_deleted_users
from shared.models import (
    Campaign,
    CreatorList,
    ScrapingJob,
    User,
    UserBilling,
    UserDeletionStep,
)
from tooling.embedded import free_port

from ..billing.conftest import billing_user, with_stripe_subscription
from ..factories import make_campaign, make_job, make_list
from ..identity.conftest import clerk_user_payload, signed
from ..support.cli import run_scout
from ..support.fake_stripe import fake_stripe
from ..support.services import running_api, running_worker
from ..support.wait import eventually


async def _count(engine, model, *where) -> int:
    async with engine.connect() as conn:
        return await conn.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


async def _pending(engine, user_pk) -> set[str]:
    async with engine.connect() as conn:
        stmt = sa.select(UserDeletionStep.service).where(
            UserDeletionStep.user_id == user_pk, UserDeletionStep.applied_at.is_(None)
        )
        return set((await conn.execute(stmt)).scalars())


def _gauge(metrics_text: str, service: str) -> float | None:
    prefix = f'scout_user_deletions_pending{{service="{service}"}} '
    for line in metrics_text.splitlines():
        if line.startswith(prefix):
            return float(line[len(prefix) :])
    return None


async def test_a_deletion_waits_for_stripe_visibly_and_completes_when_it_answers(
    committed, service_settings, database_url, monkeypatch
):
    async with fake_stripe() as stripe:
        settings = service_settings.model_copy(
            update={
                "stripe_secret_key": "sk_test_saga",
                "stripe_api_base": stripe.url,
                "events_retry_max_seconds": 1.0,
            }
        )
        user = await billing_user(committed, plan="growth", status="active")
        _, sub = await with_stripe_subscription(committed, stripe, user, "price_growth_monthly")
        async with AsyncSession(committed, expire_on_commit=False) as session, session.begin():
            campaign = await make_campaign(session, user)
            await make_job(session, campaign, status="completed")
            await make_list(session, user)
        stripe.fail_with = 503  # Stripe is down when the user leaves
        metrics_port = free_port()
        identity_settings = settings.model_copy(
            update={"worker_metrics_port": metrics_port, "worker_metrics_host": "127.0.0.1"}
        )
        async with (
            running_worker("identity", identity_settings),
            running_worker("billing", settings),
            running_worker("campaign", settings),
            running_worker("scraping", settings),
            running_api("identity", settings) as identity,
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{metrics_port}") as worker,
        ):
            body, headers = signed(clerk_user_payload("user.deleted", user.user_id))
            response = await identity.post("/webhooks/clerk", content=body, headers=headers)
            assert response.json() == {"status": "applied"}

            async def only_billing_left() -> bool:
                return await _pending(committed, user.id) == {"billing"}

            await eventually(only_billing_left, within=30)
            assert await _count(committed, ScrapingJob, ScrapingJob.user_id == user.id) == 0
            assert await _count(committed, CreatorList, CreatorList.user_id == user.id) == 0
            # Billing has not cancelled Stripe: its rows stay, and so does the user.
            assert await _count(committed, UserBilling, UserBilling.user_id == user.id) == 1
            async with AsyncSession(committed) as session, session.begin():
                assert await purge_deleted_users(session) == []

            async def metric_shows_billing_pending() -> bool:
                text = (await worker.get("/metrics")).text
                return _gauge(text, "billing") == 1 and _gauge(text, "scraping") == 0

            await eventually(metric_shows_billing_pending, within=20)
            env = {"database_url": database_url}
            args = ("user", "inspect", "--clerk-id", user.user_id)
            as_json = await asyncio.to_thread(run_scout, monkeypatch, *args, "--json", **env)
            dossier = json.loads(as_json.output)
            steps = {s["service"]: s for s in dossier["deletion"]}
            assert steps["billing"]["applied_at"] is None
            assert steps["scraping"]["applied_at"] is not None
            flagged = {i["code"]: i["detail"] for i in dossier["inconsistencies"]}
            assert "waiting for billing (since" in flagged["deletion_pending"]
            table = await asyncio.to_thread(run_scout, monkeypatch, *args, **env)
            assert "Deletion" in table.output and "pending" in table.output

            stripe.fail_with = None  # Stripe is back

            async def billing_done() -> bool:
                return await _pending(committed, user.id) == set()

            await eventually(billing_done, within=30)
            assert sub["status"] == "canceled"
            async with AsyncSession(committed) as session, session.begin():
                assert await purge_deleted_users(session) == [user.user_id]

            async def metric_back_to_zero() -> bool:
                return _gauge((await worker.get("/metrics")).text, "billing") == 0

            await eventually(metric_back_to_zero, within=20)
    assert await _count(committed, User, User.id == user.id) == 0
    assert await _count(committed, Campaign, Campaign.user_id == user.id) == 0
