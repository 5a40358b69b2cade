"""GET/PATCH /me and POST /me/onboarding: race-safe creation, validation, the step machine."""

import asyncio
import uuid

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from shared.models import Event, User, UserSystemData

from ..factories import clerk_id, make_user


async def _scalar(engine, stmt):
    async with engine.connect() as conn:
        return (await conn.execute(stmt)).scalar_one()


def _event_count(type_: str, uid: str):
    return (
        sa.select(sa.func.count())
        .select_from(Event)
        .where(Event.type == type_, Event.data["clerk_user_id"].astext == uid)
    )


async def test_ten_concurrent_first_calls_create_one_user_and_one_event(api, committed, auth):
    uid = clerk_id()
    headers = auth(uid, email="first@example.com")
    responses = await asyncio.gather(*(api.get("/me", headers=headers) for _ in range(10)))
    assert [r.status_code for r in responses] == [200] * 10, [r.text for r in responses]
    assert len({r.json()["id"] for r in responses}) == 1
    users = sa.select(sa.func.count()).select_from(User).where(User.user_id == uid)
    assert await _scalar(committed, users) == 1
    assert await _scalar(committed, _event_count("identity.user.created", uid)) == 1
    system = sa.select(sa.func.count()).select_from(UserSystemData)
    assert await _scalar(committed, system) == 1
    profile = responses[0].json()
    assert profile["user_id"] == uid
    assert profile["email"] == "first@example.com"
    assert profile["onboarding_step"] == "pending"
    assert profile["subscription_status"] == "none"
    assert profile["trial_status"] == "pending"
    for field in ("usage_campaigns_current", "usage_creators_current_month", "stripe_customer_id"):
        assert field in profile


async def test_me_requires_a_valid_token(api, signing_keys):
    assert (await api.get("/me")).status_code == 401
    bad = signing_keys.token("user_x", issuer="someone-else")
    response = await api.get("/me", headers={"Authorization": f"Bearer {bad}"})
    assert response.status_code == 401
    assert response.json()["code"] == "unauthorized"


async def test_patch_me_updates_fields_and_emits_updated(api, committed, auth):
    uid = clerk_id()
    response = await api.patch(
        "/me", headers=auth(uid), json={"full_name": "  Ada  ", "industry": "Fashion"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["full_name"], body["industry"]) == ("Ada", "Fashion")
    data = await _scalar(
        committed, sa.select(Event.data).where(Event.type == "identity.user.updated")
    )
    assert data["changes"] == {"full_name": "Ada", "industry": "Fashion"}
    # The same values again change nothing and emit nothing.
    await api.patch("/me", headers=auth(uid), json={"full_name": "Ada"})
    assert await _scalar(committed, _event_count("identity.user.updated", uid)) == 1


async def test_patch_me_rejects_unknown_and_invalid_fields(api, auth):
    uid = clerk_id()
    for body in (
        {"is_admin": True},
        {"onboarding_step": "completed"},
        {"nickname": "x"},
        {"full_name": "x" * 121},
        {"brand_description": "   "},
    ):
        response = await api.patch("/me", headers=auth(uid), json=body)
        assert response.status_code == 422, body
        assert response.json()["code"] == "validation_error"
        assert response.json()["errors"]


async def test_onboarding_walks_the_steps_in_order(api, committed, auth):
    uid = clerk_id()
    headers = auth(uid)
    step1 = await api.post(
        "/me/onboarding",
        headers=headers,
        json={"step": "info_captured", "full_name": "Ada L", "business_name": "Engines Ltd"},
    )
    assert step1.status_code == 200, step1.text
    assert step1.json()["onboarding_step"] == "info_captured"
    assert step1.json()["business_name"] == "Engines Ltd"
    step2 = await api.post(
        "/me/onboarding",
        headers=headers,
        json={"step": "intent_captured", "brand_description": "We build engines."},
    )
    assert step2.json()["onboarding_step"] == "intent_captured"
    step3 = await api.post(
        "/me/onboarding",
        headers=headers,
        json={"step": "plan_selected", "plan": "scale", "interval": "yearly"},
    )
    assert step3.status_code == 200, step3.text
    assert step3.json()["onboarding_step"] == "plan_selected"
    async with committed.connect() as conn:
        changes = (
            (
                await conn.execute(
                    sa.select(Event.data)
                    .where(Event.type == "identity.onboarding.step_changed")
                    .order_by(Event.seq)
                )
            )
            .scalars()
            .all()
        )
    assert [(c["previous_step"], c["step"]) for c in changes] == [
        ("pending", "info_captured"),
        ("info_captured", "intent_captured"),
        ("intent_captured", "plan_selected"),
    ]
    assert (changes[-1]["plan"], changes[-1]["interval"]) == ("scale", "yearly")
    # Re-submitting an earlier step edits its fields without moving the step back.
    again = await api.post(
        "/me/onboarding",
        headers=headers,
        json={"step": "info_captured", "full_name": "Ada Lovelace", "business_name": "Engines"},
    )
    assert again.status_code == 200
    assert again.json()["onboarding_step"] == "plan_selected"
    assert again.json()["full_name"] == "Ada Lovelace"


async def test_onboarding_jumps_are_409_and_change_nothing(api, committed, auth):
    uid = clerk_id()
    headers = auth(uid)
    assert (await api.get("/me", headers=headers)).status_code == 200
    jump = await api.post(
        "/me/onboarding",
        headers=headers,
        json={"step": "plan_selected", "plan": "pro", "interval": "monthly"},
    )
    assert jump.status_code == 409
    assert jump.json()["code"] == "illegal_transition"
    assert jump.json()["current_step"] == "pending"
    skip = await api.post(
        "/me/onboarding",
        headers=headers,
        json={"step": "intent_captured", "brand_description": "x"},
    )
    assert skip.status_code == 409
    done = await api.post("/me/onboarding", headers=headers, json={"step": "completed"})
    assert done.status_code == 409
    assert done.json()["code"] == "illegal_transition"
    step = await _scalar(committed, sa.select(User.onboarding_step).where(User.user_id == uid))
    assert step == "pending"
    assert await _scalar(committed, _event_count("identity.onboarding.step_changed", uid)) == 0


async def test_onboarding_validates_each_steps_fields(api, auth):
    uid = clerk_id()
    headers = auth(uid)
    bad = [
        {"step": "info_captured", "full_name": "Ada"},  # business_name missing
        {"step": "info_captured", "full_name": "x" * 121, "business_name": "B"},
        {"step": "info_captured", "full_name": " ", "business_name": "B"},
        {"step": "info_captured", "full_name": "A", "business_name": "B", "extra": 1},
        {"step": "intent_captured", "brand_description": "x" * 1501},
        {"step": "plan_selected", "plan": "free", "interval": "monthly"},
        {"step": "plan_selected", "plan": "growth", "interval": "weekly"},
        {"step": "step_1"},
        {},
    ]
    for body in bad:
        response = await api.post("/me/onboarding", headers=headers, json=body)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["code"] == "validation_error"
        assert "<" not in response.text, response.text  # never a Python enum repr
    wrong_step = await api.post("/me/onboarding", headers=headers, json={"step": "step_1"})
    assert wrong_step.json()["errors"][0]["loc"] == ["body", "step"]
    allowed = "'info_captured', 'intent_captured', 'plan_selected', 'completed'"
    assert allowed in wrong_step.json()["detail"]
    ok = await api.post(
        "/me/onboarding",
        headers=headers,
        json={"step": "info_captured", "full_name": "x" * 120, "business_name": "B"},
    )
    assert ok.status_code == 200


async def test_concurrent_step_submissions_advance_once(api, committed, auth):
    uid = clerk_id()
    headers = auth(uid)
    body = {"step": "info_captured", "full_name": "A", "business_name": "B"}
    responses = await asyncio.gather(
        *(api.post("/me/onboarding", headers=headers, json=body) for _ in range(5))
    )
    assert all(r.status_code == 200 for r in responses)
    assert await _scalar(committed, _event_count("identity.onboarding.step_changed", uid)) == 1


async def test_a_user_only_ever_sees_their_own_profile(api, committed, auth):
    async with AsyncSession(committed, expire_on_commit=False) as session, session.begin():
        other = await make_user(session, full_name="Secret Person", business_name="Hidden Co")
    mine = clerk_id()
    me = await api.get("/me", headers=auth(mine))
    assert me.json()["user_id"] == mine
    assert "Secret Person" not in me.text
    # Identity comes from the verified token only: query/body hints are ignored or rejected.
    spoof = await api.get(f"/me?user_id={other.user_id}", headers=auth(mine))
    assert spoof.json()["user_id"] == mine
    patch = await api.patch("/me", headers=auth(mine), json={"user_id": other.user_id})
    assert patch.status_code == 422
    # And admin views are closed to a normal user.
    peek = await api.get(f"/admin/users/{other.user_id}", headers=auth(mine))
    assert peek.status_code == 403
    assert peek.json()["code"] == "admin_required"
    unchanged = await _scalar(committed, sa.select(User.full_name).where(User.id == other.id))
    assert unchanged == "Secret Person"
    assert uuid.UUID(me.json()["id"]) != other.id
