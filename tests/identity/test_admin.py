"""Admin: 403 for non-admins, user search, the dossier with inconsistencies, typed config."""

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from shared.events.outbox import record_event
from shared.models import Event, SystemConfiguration, User

from ..factories import clerk_id, make_campaign, make_user
from .conftest import make_admin

ADMIN_ROUTES = [
    ("GET", "/admin/users"),
    ("GET", "/admin/users/user_x"),
    ("GET", "/admin/config/limits/max"),
    ("PUT", "/admin/config/limits/max"),
    ("GET", "/admin/logging/identity/scout"),
    ("PUT", "/admin/logging/identity/scout"),
]


async def test_admin_routes_are_403_for_non_admins_and_401_without_token(api, auth):
    for method, path in ADMIN_ROUTES:
        body = {"value": 1, "value_type": "number"} if "config" in path else {"level": "DEBUG"}
        kwargs = {"json": body} if method == "PUT" else {}
        anonymous = await api.request(method, path, **kwargs)
        assert anonymous.status_code == 401, path
        response = await api.request(method, path, headers=auth(clerk_id()), **kwargs)
        assert response.status_code == 403, (method, path, response.text)
        assert response.json()["code"] == "admin_required"


async def test_user_search_by_email_prefix_is_paginated(api, committed, auth):
    admin = await make_admin(committed)
    async with AsyncSession(committed) as session, session.begin():
        for i in range(5):
            await make_user(session, email=f"Match{i}@brand.io")
        await make_user(session, email="other@brand.io")
    first = await api.get(
        "/admin/users", params={"email": "match", "page_size": 2}, headers=auth(admin)
    )
    assert first.status_code == 200, first.text
    body = first.json()
    assert (body["total"], body["page"], body["page_size"], len(body["items"])) == (5, 1, 2, 2)
    third = await api.get(
        "/admin/users", params={"email": "MATCH", "page_size": 2, "page": 3}, headers=auth(admin)
    )
    assert [len(third.json()["items"]), third.json()["total"]] == [1, 5]
    # LIKE wildcards are literal.
    none = await api.get("/admin/users", params={"email": "%"}, headers=auth(admin))
    assert none.json()["total"] == 0
    everyone = await api.get("/admin/users", headers=auth(admin))
    assert everyone.json()["total"] == 7
    # Postgres text cannot hold NUL: a 422, not a 500.
    nul = await api.get("/admin/users", params={"email": "a\x00"}, headers=auth(admin))
    assert (nul.status_code, nul.json()["code"]) == (422, "validation_error")
    bad = await api.get("/admin/users", params={"page_size": 1000}, headers=auth(admin))
    assert bad.status_code == 422


async def test_dossier_flags_inconsistencies_and_lists_events(api, committed, auth):
    admin = await make_admin(committed)
    now = datetime.now(UTC)
    async with AsyncSession(committed, expire_on_commit=False) as session, session.begin():
        broken = await make_user(session, onboarding_step="plan_selected")
        await session.execute(
            sa.text(
                "UPDATE user_subscriptions SET subscription_status = 'trialing',"
                " current_plan = 'growth', trial_end_date = :past WHERE user_id = :uid"
            ),
            {"past": now - timedelta(days=2), "uid": broken.id},
        )
        await make_campaign(session, broken)
        await record_event(
            session,
            service="identity",
            type="identity.user.updated",
            aggregate_type="user",
            aggregate_id=broken.id,
            user_id=broken.id,
            data={"user_id": broken.id, "clerk_user_id": broken.user_id, "changes": {"x": 1}},
        )
        # A user with status active, no Stripe subscription and no usage/system rows, made
        # long enough ago that billing should have provisioned it.
        orphan = await make_user(session, children=False, created_at=now - timedelta(hours=1))
        await session.execute(
            sa.text(
                "INSERT INTO user_subscriptions (user_id, subscription_status, current_plan)"
                " VALUES (:uid, 'active', 'pro')"
            ),
            {"uid": orphan.id},
        )
    response = await api.get(f"/admin/users/{broken.user_id}", headers=auth(admin))
    assert response.status_code == 200, response.text
    dossier = response.json()
    codes = {i["code"] for i in dossier["inconsistencies"]}
    assert "trialing_with_trial_end_in_past" in codes
    assert "trialing_without_stripe_subscription" in codes
    assert "onboarding_behind_subscription" in codes
    assert dossier["trial_status"] == "expired"  # derived, not stored
    assert dossier["profile"]["user_id"] == broken.user_id
    assert dossier["related_rows"]["campaigns"] == 1
    assert all(dossier["child_rows"].values())
    assert [e["type"] for e in dossier["recent_events"]] == ["identity.user.updated"]
    assert [e["published"] for e in dossier["recent_events"]] == [False]  # no relay runs here
    async with committed.begin() as conn:  # what the relay does once JetStream has acked it
        await conn.execute(sa.text("DELETE FROM events_pending"))
    response = await api.get(f"/admin/users/{broken.user_id}", headers=auth(admin))
    assert [e["published"] for e in response.json()["recent_events"]] == [True]

    response = await api.get(f"/admin/users/{orphan.user_id}", headers=auth(admin))
    codes = {i["code"] for i in response.json()["inconsistencies"]}
    assert {
        "active_without_stripe_subscription",
        "missing_user_usage",
        "missing_user_billing",
        "missing_user_system_data",
        "onboarding_behind_subscription",
    } <= codes
    assert "missing_user_subscriptions" not in codes

    missing = await api.get("/admin/users/user_nobody", headers=auth(admin))
    assert missing.status_code == 404
    assert missing.json()["code"] == "user_not_found"


async def test_a_healthy_user_has_no_inconsistencies(api, committed, auth):
    admin = await make_admin(committed)
    async with AsyncSession(committed, expire_on_commit=False) as session, session.begin():
        user = await make_user(session, onboarding_step="completed")
        await session.execute(
            sa.text(
                "UPDATE user_subscriptions SET subscription_status = 'trialing', current_plan ="
                " 'growth', trial_end_date = now() + interval '5 days' WHERE user_id = :uid"
            ),
            {"uid": user.id},
        )
        await session.execute(
            sa.text(
                "UPDATE user_billing SET stripe_customer_id = 'cus_1',"
                " stripe_subscription_id = 'sub_1' WHERE user_id = :uid"
            ),
            {"uid": user.id},
        )
    response = await api.get(f"/admin/users/{user.user_id}", headers=auth(admin))
    assert response.json()["inconsistencies"] == []
    assert response.json()["trial_status"] == "active"


async def test_config_values_are_typed_and_validated(api, committed, auth):
    headers = auth(await make_admin(committed))
    cases = [
        ("number", 5, "5", 5),
        ("number", "0.1", "0.1", 0.1),  # not truncated to 0
        ("duration", "30s", "30s", 30.0),
        ("duration", "250ms", "250ms", 0.25),
        ("boolean", True, "true", True),
        ("boolean", "false", "false", False),
        ("string", "hello", "hello", "hello"),
        ("json", {"b": [1, 2], "a": None}, '{"a":null,"b":[1,2]}', {"a": None, "b": [1, 2]}),
    ]
    for i, (value_type, value, stored, typed) in enumerate(cases):
        path = f"/admin/config/tests/{value_type}_{i}"
        put = await api.put(path, headers=headers, json={"value": value, "value_type": value_type})
        assert put.status_code == 200, (value_type, put.text)
        got = (await api.get(path, headers=headers)).json()
        assert (got["value"], got["typed_value"], got["value_type"]) == (stored, typed, value_type)

    invalid = [
        ("number", "five"),
        ("number", True),
        ("number", "NaN"),
        ("duration", "30"),
        ("duration", "5 days"),
        ("boolean", "yes"),
        ("string", 5),
    ]
    for i, (value_type, value) in enumerate(invalid):
        response = await api.put(
            f"/admin/config/tests/bad_{i}",
            headers=headers,
            json={"value": value, "value_type": value_type},
        )
        assert response.status_code == 400, (value_type, value, response.text)
        assert response.json()["code"] == "invalid_config_value"
    # An existing key keeps its type: a bad value or a different type is refused.
    await api.put(
        "/admin/config/limits/batch", headers=headers, json={"value": 5, "value_type": "number"}
    )
    wrong = await api.put("/admin/config/limits/batch", headers=headers, json={"value": "x"})
    assert wrong.json()["code"] == "invalid_config_value"
    retype = await api.put(
        "/admin/config/limits/batch", headers=headers, json={"value": "x", "value_type": "string"}
    )
    assert retype.status_code == 409
    new_without_type = await api.put(
        "/admin/config/limits/fresh", headers=headers, json={"value": 1}
    )
    assert new_without_type.json()["code"] == "value_type_required"
    unknown_type = await api.put(
        "/admin/config/limits/x", headers=headers, json={"value": 1, "value_type": "float"}
    )
    assert unknown_type.status_code == 422
    missing = await api.get("/admin/config/limits/nothing", headers=headers)
    assert missing.status_code == 404
    bad_path = await api.get("/admin/config/limits/has%20space", headers=headers)
    assert bad_path.status_code == 422
    async with committed.connect() as conn:
        stored = (
            await conn.execute(
                sa.select(SystemConfiguration.value).where(SystemConfiguration.key == "batch")
            )
        ).scalar_one()
    assert stored == "5"


async def test_config_and_logging_changes_emit_platform_events_only_on_change(api, committed, auth):
    headers = auth(await make_admin(committed))
    for value in (5, 7, 7):
        await api.put(
            "/admin/config/limits/n", headers=headers, json={"value": value, "value_type": "number"}
        )
    for level in ("debug", "DEBUG", "WARNING"):
        response = await api.put(
            "/admin/logging/*/scout.billing", headers=headers, json={"level": level}
        )
        assert response.status_code == 200, response.text
    assert (
        await api.put("/admin/logging/nope/x", headers=headers, json={"level": "INFO"})
    ).status_code == 422
    assert (
        await api.put("/admin/logging/identity/x", headers=headers, json={"level": "LOUD"})
    ).status_code == 422
    got = await api.get("/admin/logging/*/scout.billing", headers=headers)
    assert got.json()["level"] == "WARNING"
    async with committed.connect() as conn:
        rows = (
            await conn.execute(
                sa.select(Event.type, Event.data)
                .where(Event.type.like("platform.%"))
                .order_by(Event.seq)
            )
        ).all()
    config = [d for t, d in rows if t == "platform.config.changed"]
    logging_ = [d for t, d in rows if t == "platform.logging.changed"]
    assert [(d["value"], d["previous_value"]) for d in config] == [("5", None), ("7", "5")]
    assert [d["level"] for d in logging_] == ["DEBUG", "WARNING"]
    assert logging_[0]["service"] == "*"


async def test_deleted_admins_lose_admin_rights(api, committed, auth):
    admin = await make_admin(committed)
    async with committed.begin() as conn:
        await conn.execute(
            sa.update(User).where(User.user_id == admin).values(deleted_at=sa.func.now())
        )
    response = await api.get("/admin/users", headers=auth(admin))
    assert response.status_code == 403
