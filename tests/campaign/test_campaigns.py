"""Campaigns: creation against billing quota (real billing worker), listing, detail, transitions,
deletion."""

import asyncio
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.campaign.repository import CampaignRepository
from shared.models import BackgroundJob, Campaign, Event, UsageReservation, UserUsage

from ..factories import make_campaign, make_job
from ..support.services import running_api
from .conftest import scalar


async def usage_of(engine, user) -> int:
    return await scalar(
        engine, sa.select(UserUsage.usage_campaigns_current).where(UserUsage.user_id == user.id)
    )


async def test_create_reserves_inserts_with_its_event_and_confirms(
    api, billing, make_owner, committed
):
    owner = await make_owner(campaigns_limit=5)
    response = await api.post(
        "/campaigns", json={"name": "Spring launch", "description": "d"}, headers=owner.headers
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["name"], body["status"], body["search_type"]) == (
        "Spring launch",
        "draft",
        "keyword",
    )
    async with committed.connect() as conn:
        event = (await conn.execute(sa.select(Event.type, Event.user_id, Event.data))).one()
        reservation_id, *reservation = (
            await conn.execute(
                sa.select(
                    UsageReservation.id, UsageReservation.status, UsageReservation.used_amount
                )
            )
        ).one()
        job = await conn.scalar(
            sa.select(BackgroundJob.payload).where(BackgroundJob.service == "campaign")
        )
    assert event.type == "campaign.campaign.created" and event.user_id == owner.user.id
    assert event.data["campaign_id"] == body["id"]
    assert tuple(reservation) == ("confirmed", 1)
    # The durable retry of the confirm, committed with the campaign.
    assert job == {"reservation_id": str(reservation_id), "used_amount": 1}
    assert await usage_of(committed, owner.user) == 1


async def test_twenty_concurrent_creates_at_a_limit_of_three_make_exactly_three(
    api, billing, make_owner, committed
):
    owner = await make_owner(campaigns_limit=3)
    responses = await asyncio.gather(
        *(api.post("/campaigns", json={"name": f"c{i}"}, headers=owner.headers) for i in range(20))
    )
    codes = sorted(r.status_code for r in responses)
    assert codes == [201] * 3 + [403] * 17, [r.text for r in responses if r.status_code >= 500]
    refused = [r.json() for r in responses if r.status_code == 403]
    assert {r["code"] for r in refused} == {"campaign_limit_reached"}
    assert await scalar(committed, sa.select(sa.func.count()).select_from(Campaign)) == 3
    assert await usage_of(committed, owner.user) == 3
    confirmed = sa.select(sa.func.count()).where(UsageReservation.status == "confirmed")
    assert await scalar(committed, confirmed) == 3


async def test_a_user_without_a_plan_is_told_so_not_that_a_limit_was_reached(
    api, billing, make_owner, committed, service_settings
):
    owner = await make_owner(campaigns_limit=None)  # no plan, no per-user allowance
    refused = await api.post("/campaigns", json={"name": "x"}, headers=owner.headers)
    assert (refused.status_code, refused.json()["code"]) == (403, "no_active_plan")
    detail = refused.json()["detail"]
    assert "no plan" in detail and "POST /billing/checkout" in detail
    assert "scout billing subscribe" not in detail  # only where billing sells plans locally
    assert await scalar(committed, sa.select(sa.func.count()).select_from(Campaign)) == 0
    # In development without Stripe, it also says how to get a plan there and then.
    dev = service_settings.model_copy(update={"scout_env": "development"})
    async with running_api("campaign", dev) as dev_api:
        refused = await dev_api.post("/campaigns", json={"name": "x"}, headers=owner.headers)
    assert refused.json()["code"] == "no_active_plan"
    assert "./scripts/scout billing subscribe" in refused.json()["detail"]
    # A user on a plan whose limit is spent still hears about the limit.
    capped = await make_owner(campaigns_limit=0)
    await _on_plan(committed, capped.user, "glow_up")
    limited = await api.post("/campaigns", json={"name": "x"}, headers=capped.headers)
    assert (limited.status_code, limited.json()["code"]) == (403, "campaign_limit_reached")


async def _on_plan(engine, user, plan: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            sa.text("UPDATE user_subscriptions SET current_plan = :p WHERE user_id = :u"),
            {"p": plan, "u": user.id},
        )


async def test_billing_unreachable_fails_closed_with_503(api, make_owner, committed):
    owner = await make_owner()  # no billing worker: nobody answers billing.usage.reserve
    response = await api.post("/campaigns", json={"name": "x"}, headers=owner.headers)
    assert (response.status_code, response.json()["code"]) == (503, "billing_unavailable")
    assert await scalar(committed, sa.select(sa.func.count()).select_from(Campaign)) == 0


async def test_a_failed_insert_gives_the_reservation_back(api, billing, make_owner, committed):
    owner = await make_owner(campaigns_limit=1)
    # Make the insert itself fail after billing reserved: a trigger refusing one name.
    async with committed.begin() as conn:
        await conn.execute(
            sa.text(
                "CREATE FUNCTION test_refuse_campaign() RETURNS trigger LANGUAGE plpgsql AS $$"
                " BEGIN IF NEW.name = 'refused' THEN RAISE EXCEPTION 'refused by test'; END IF;"
                " RETURN NEW; END $$"
            )
        )
        await conn.execute(
            sa.text(
                "CREATE TRIGGER test_refuse_campaign BEFORE INSERT ON campaigns"
                " FOR EACH ROW EXECUTE FUNCTION test_refuse_campaign()"
            )
        )
    try:
        failed = await api.post("/campaigns", json={"name": "refused"}, headers=owner.headers)
        assert failed.status_code == 500
        status = await scalar(committed, sa.select(UsageReservation.status))
        assert status == "released"
        assert await usage_of(committed, owner.user) == 0
        # The quota really came back: the one allowed campaign can still be made.
        ok = await api.post("/campaigns", json={"name": "fine"}, headers=owner.headers)
        assert ok.status_code == 201, ok.text
    finally:
        async with committed.begin() as conn:
            await conn.execute(sa.text("DROP TRIGGER test_refuse_campaign ON campaigns"))
            await conn.execute(sa.text("DROP FUNCTION test_refuse_campaign()"))


async def test_listing_is_newest_first_with_totals_and_a_status_filter(api, make_owner, committed):
    owner = await make_owner()
    async with AsyncSession(committed, expire_on_commit=False) as session:
        for i in range(5):
            await make_campaign(
                session, owner.user, name=f"c{i}", status="active" if i % 2 else "draft"
            )
        await session.commit()
    page = (await api.get("/campaigns?page=1&page_size=2", headers=owner.headers)).json()
    assert (page["total"], page["page"], page["page_size"]) == (5, 1, 2)
    assert [c["name"] for c in page["items"]] == ["c4", "c3"]
    second = (await api.get("/campaigns?page=3&page_size=2", headers=owner.headers)).json()
    assert [c["name"] for c in second["items"]] == ["c0"]
    active = (await api.get("/campaigns?status=active", headers=owner.headers)).json()
    assert active["total"] == 2 and {c["name"] for c in active["items"]} == {"c1", "c3"}
    bad = await api.get("/campaigns?status=nope", headers=owner.headers)
    assert (bad.status_code, bad.json()["code"]) == (422, "validation_error")


async def test_detail_summarises_its_jobs(api, make_owner, committed):
    owner = await make_owner()
    async with AsyncSession(committed, expire_on_commit=False) as session:
        campaign = await make_campaign(session, owner.user)
        await make_job(session, campaign, status="completed", processed_results=40)
        await make_job(session, campaign, status="completed", processed_results=60)
        await make_job(session, campaign, status="processing", processed_results=5)
        await session.commit()
    body = (await api.get(f"/campaigns/{campaign.id}", headers=owner.headers)).json()
    assert body["jobs"]["total"] == 3 and body["jobs"]["creators_found"] == 105
    assert body["jobs"]["by_status"]["completed"] == 2
    assert body["jobs"]["by_status"]["processing"] == 1
    assert body["jobs"]["by_status"]["error"] == 0


async def test_status_moves_one_step_at_a_time_and_illegal_moves_conflict(
    api, make_owner, committed
):
    owner = await make_owner()
    async with AsyncSession(committed, expire_on_commit=False) as session:
        campaign = await make_campaign(session, owner.user)
        await session.commit()
    url = f"/campaigns/{campaign.id}"

    async def move(status: str):
        return await api.patch(url, json={"status": status}, headers=owner.headers)

    skip = await move("completed")
    assert (skip.status_code, skip.json()["code"]) == (409, "illegal_status_transition")
    for status in ("active", "completed", "archived"):
        moved = await move(status)
        assert (moved.status_code, moved.json()["status"]) == (200, status)
    for status in ("draft", "active", "completed"):
        assert (await move(status)).status_code == 409
    assert (await move("archived")).status_code == 200  # same status: nothing to do
    renamed = await api.patch(url, json={"name": "New", "description": None}, headers=owner.headers)
    assert (renamed.json()["name"], renamed.json()["description"]) == ("New", None)
    null_name = await api.patch(url, json={"name": None}, headers=owner.headers)
    assert (null_name.status_code, null_name.json()["code"]) == (422, "validation_error")
    async with committed.connect() as conn:
        updates = (
            await conn.execute(
                sa.select(Event.data)
                .where(Event.type == "campaign.campaign.updated")
                .order_by(Event.seq)
            )
        ).scalars()
        assert [u["status"] for u in updates] == ["active", "completed", "archived", "archived"]


async def test_concurrent_transitions_from_the_same_status_let_one_win(api, make_owner, committed):
    owner = await make_owner()
    async with AsyncSession(committed, expire_on_commit=False) as session:
        campaign = await make_campaign(session, owner.user, status="active")
        await session.commit()
    url = f"/campaigns/{campaign.id}"
    responses = await asyncio.gather(
        *(api.patch(url, json={"status": "completed"}, headers=owner.headers) for _ in range(5))
    )
    # The row lock serialises them: the first moves it, the rest find it already completed.
    assert all(r.status_code == 200 for r in responses)
    completed = sa.select(sa.func.count()).where(Event.type == "campaign.campaign.updated")
    assert await scalar(committed, completed) == 1


async def test_delete_hides_announces_and_the_sweep_waits_for_scraping(api, make_owner, committed):
    owner = await make_owner()
    async with AsyncSession(committed, expire_on_commit=False) as session:
        bare = await make_campaign(session, owner.user)
        with_jobs = await make_campaign(session, owner.user)
        await make_job(session, with_jobs)
        await session.commit()
    for campaign in (bare, with_jobs):
        deleted = await api.delete(f"/campaigns/{campaign.id}", headers=owner.headers)
        assert deleted.status_code == 204
        gone = await api.get(f"/campaigns/{campaign.id}", headers=owner.headers)
        assert (gone.status_code, gone.json()["code"]) == (404, "campaign_not_found")
        again = await api.delete(f"/campaigns/{campaign.id}", headers=owner.headers)
        assert again.status_code == 404
    assert (await api.get("/campaigns", headers=owner.headers)).json()["total"] == 0
    announced = sa.select(sa.func.count()).where(Event.type == "campaign.campaign.deleted")
    assert await scalar(committed, announced) == 2
    async with AsyncSession(committed, expire_on_commit=False) as session, session.begin():
        removed = await CampaignRepository(session).sweep_deleted(timedelta(0))
    # The campaign whose job scraping has not purged yet stays (as a hidden row).
    assert removed == [bare.id]
    remaining = await scalar(committed, sa.select(Campaign.id))
    assert remaining == with_jobs.id
