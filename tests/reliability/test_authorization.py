"""Authorization: every route that takes an id answers another user's id with 404 and no data;
admin routes answer 403 to non-admins. The route table is read from the live OpenAPI, so a new
route with an id fails this test until it is listed here."""

import re
import uuid

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from shared.models import Campaign, CreatorList, ListItem, ScrapingJob, UserSubscription

from ..factories import make_user
from ..support.services import running_api, running_worker

# (service, method, path template) → the request body an attacker sends (None: no body).
CREATOR = {"platform": "instagram", "external_id": "ig_1", "handle": "alice_pick"}
FOREIGN = {
    ("campaign", "GET", "/campaigns/{campaign_id}"): None,
    ("campaign", "PATCH", "/campaigns/{campaign_id}"): {"name": "taken over"},
    ("campaign", "DELETE", "/campaigns/{campaign_id}"): None,
    ("campaign", "GET", "/lists/{list_id}"): None,
    ("campaign", "PATCH", "/lists/{list_id}"): {"name": "taken over"},
    ("campaign", "DELETE", "/lists/{list_id}"): None,
    ("campaign", "GET", "/lists/{list_id}/items"): None,
    ("campaign", "POST", "/lists/{list_id}/items"): {"items": [CREATOR | {"external_id": "x"}]},
    ("campaign", "PATCH", "/lists/{list_id}/items"): {"items": [{"id": "{item_id}", "notes": "x"}]},
    ("campaign", "DELETE", "/lists/{list_id}/items"): {"item_ids": ["{item_id}"]},
    ("campaign", "GET", "/lists/{list_id}/export.csv"): None,
    ("campaign", "POST", "/lists/{list_id}/enrich"): None,
    ("scraping", "GET", "/jobs/{job_id}"): None,
    ("scraping", "GET", "/jobs/{job_id}/results"): None,
    ("scraping", "POST", "/jobs/{job_id}/cancel"): None,
    ("scraping", "GET", "/enrichments/{enrichment_id}"): None,
    # Enriched profiles are public creator data, shared by every user: nobody's id is in the
    # path, and one nobody enriched is 404 for everyone.
    ("scraping", "GET", "/creators/{platform}/{external_id}"): None,
}
ADMIN = {
    ("identity", "GET", "/admin/users"),
    ("identity", "GET", "/admin/users/{clerk_user_id}"),
    ("identity", "GET", "/admin/config/{category}/{key}"),
    ("identity", "PUT", "/admin/config/{category}/{key}"),
    ("identity", "GET", "/admin/logging/{service}/{logger}"),
    ("identity", "PUT", "/admin/logging/{service}/{logger}"),
}
ADMIN_BODIES = {
    "/admin/config/{category}/{key}": {"value": "1"},
    "/admin/logging/{service}/{logger}": {"level": "DEBUG"},
}


async def test_other_users_ids_are_not_found_and_admin_routes_forbidden(
    service_settings, signing_keys, committed
):
    alice_id, bob_id = f"user_alice_{uuid.uuid4().hex[:6]}", f"user_bob_{uuid.uuid4().hex[:6]}"
    async with AsyncSession(committed) as session, session.begin():
        alice_uuid = (await make_user(session, user_id=alice_id)).id
        await make_user(session, user_id=bob_id)
        await session.execute(
            sa.update(UserSubscription).values(current_plan="pro", subscription_status="active")
        )
    as_alice = {"authorization": f"Bearer {signing_keys.token(alice_id)}"}
    as_bob = {"authorization": f"Bearer {signing_keys.token(bob_id)}"}
    ids: dict[str, str] = {
        "clerk_user_id": alice_id, "category": "feature", "key": "x",
        "service": "campaign", "logger": "scout", "platform": "tiktok",
        "external_id": "never-enriched",
    }  # fmt: skip
    secrets = ["Alice's launch", "alice_pick"]

    async with running_worker("billing", service_settings):
        async with running_api("campaign", service_settings) as campaign:
            r = await campaign.post("/campaigns", json={"name": secrets[0]}, headers=as_alice)
            assert r.status_code == 201, r.text
            ids["campaign_id"] = r.json()["id"]
            r = await campaign.post("/lists", json={"name": "Alice list"}, headers=as_alice)
            ids["list_id"] = r.json()["id"]
            r = await campaign.post(
                f"/lists/{ids['list_id']}/items", json={"items": [CREATOR]}, headers=as_alice
            )
            assert r.json()["added"] == 1, r.text
            items = (await campaign.get(f"/lists/{ids['list_id']}/items", headers=as_alice)).json()
            ids["item_id"] = items["items"][0]["id"]
        async with running_api("scraping", service_settings) as scraping:
            r = await scraping.post(
                "/jobs",
                json={"campaign_id": ids["campaign_id"], "platform": "tiktok", "keywords": ["fitness"], "target_results": 10},
                headers=as_alice,
            )  # fmt: skip
            assert r.status_code == 202, r.text
            ids["job_id"] = r.json()["id"]
            r = await scraping.post("/enrichments", json={"creators": [CREATOR]}, headers=as_alice)
            assert r.status_code == 202, r.text
            ids["enrichment_id"] = r.json()["id"]

        covered: set[tuple[str, str, str]] = set()
        for service in ("identity", "billing", "campaign", "scraping"):
            async with running_api(service, service_settings) as client:
                spec = (await client.get("/openapi.json")).json()
                for template, ops in spec["paths"].items():
                    if "{" not in template and not template.startswith("/admin"):
                        continue
                    for method in ops:
                        key = (service, method.upper(), template)
                        covered.add(key)
                        path = re.sub(r"\{(\w+)\}", lambda m: ids[m.group(1)], template)
                        if key in ADMIN:
                            body = ADMIN_BODIES.get(template) if method.upper() == "PUT" else None
                            r = await client.request(method, path, json=body, headers=as_bob)
                            assert r.status_code == 403, (key, r.status_code, r.text)
                            assert r.json()["code"] == "admin_required", key
                            continue
                        assert key in FOREIGN, f"{key} takes an id: add it to this test"
                        body = FOREIGN[key]
                        if body is not None:
                            body = _fill(body, ids)
                        r = await client.request(method, path, json=body, headers=as_bob)
                        assert r.status_code == 404, (key, r.status_code, r.text)
                        assert r.json()["code"].endswith("not_found"), (key, r.json())
                        assert not any(s in r.text for s in secrets), key
    assert set(FOREIGN) | ADMIN <= covered, set(FOREIGN) | ADMIN - covered

    # Nothing Bob tried changed Alice's data.
    async with committed.connect() as conn:
        assert (
            await conn.scalar(sa.select(Campaign.name).where(Campaign.id == ids["campaign_id"]))
            == secrets[0]
        )
        assert (
            await conn.scalar(
                sa.select(Campaign.deleted_at).where(Campaign.id == ids["campaign_id"])
            )
            is None
        )
        assert (
            await conn.scalar(sa.select(CreatorList.name).where(CreatorList.id == ids["list_id"]))
            == "Alice list"
        )
        assert (
            await conn.scalar(
                sa.select(sa.func.count())
                .select_from(ListItem)
                .where(ListItem.list_id == ids["list_id"])
            )
            == 1
        )
        assert (
            await conn.scalar(sa.select(ListItem.notes).where(ListItem.id == ids["item_id"]))
            is None
        )
        assert (
            await conn.scalar(sa.select(ScrapingJob.status).where(ScrapingJob.id == ids["job_id"]))
            != "cancelled"
        )
        assert (
            await conn.scalar(
                sa.select(CreatorList.user_id).where(CreatorList.id == ids["list_id"])
            )
            == alice_uuid
        )


def _fill(value, ids):
    if isinstance(value, str):
        return re.sub(r"\{(\w+)\}", lambda m: ids[m.group(1)], value)
    if isinstance(value, list):
        return [_fill(v, ids) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    return value
