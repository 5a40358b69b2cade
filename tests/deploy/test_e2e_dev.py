"""End to end against ``scout dev``: the real command, eight real processes, real webhooks.

``scout dev`` runs as a subprocess on free ports, against an empty scratch database (it migrates
it) and the test NATS with a unique ``SCOUT_NATS_PREFIX``. The scripted journey: a user arrives
by Clerk webhook → subscribes by Stripe webhook → creates a campaign → runs a search job that
completes → saves creators to a list → exports the list as CSV. Then Ctrl-C (SIGINT) must stop
every process the suite started.
"""

import csv
import io
import json
import signal
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import psutil
import pytest
from svix.webhooks import Webhook

from shared.settings import DEV_CLERK_WEBHOOK_SECRET, DEV_STRIPE_WEBHOOK_SECRET
from tests.support.dev import SERVICES, DevSuite, dev_environment, forget_streams, start, stop
from tests.support.fake_stripe import FakeStripe, sign
from tests.support.wait import eventually

STARTUP_BUDGET_S = 30.0  # the bar on a developer machine


@pytest.fixture
async def dev_suite(scratch_database, nats_url, tmp_path) -> AsyncIterator[DevSuite]:
    env = dev_environment(scratch_database(), nats_url, tmp_path / "data")
    suite = await start(env, tmp_path / "scout-dev.log")
    try:
        yield suite
    finally:
        stop(suite)
        await forget_streams(nats_url, env)


def clerk_delivery(clerk_id: str, email: str) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(
        {
            "type": "user.created",
            "object": "event",
            "data": {
                "id": clerk_id,
                "object": "user",
                "first_name": "Ada",
                "last_name": "Lovelace",
                "primary_email_address_id": "idn_1",
                "email_addresses": [{"id": "idn_1", "email_address": email}],
            },
        }
    ).encode()
    msg_id, at = f"msg_{uuid.uuid4().hex}", datetime.now(UTC)
    signature = Webhook(DEV_CLERK_WEBHOOK_SECRET).sign(msg_id, at, body.decode())
    headers = {
        "svix-id": msg_id,
        "svix-timestamp": str(int(at.timestamp())),
        "svix-signature": signature,
        "content-type": "application/json",
    }
    return body, headers


async def test_scout_dev_runs_the_whole_journey_and_stops_cleanly(dev_suite: DevSuite):
    suite = dev_suite
    print(f"\nscout dev was up in {suite.startup_seconds:.1f} s (bar: {STARTUP_BUDGET_S:.0f} s)")
    out = suite.output()
    for expected in (DEV_CLERK_WEBHOOK_SECRET, DEV_STRIPE_WEBHOOK_SECRET, "scout dev-token"):
        assert expected in out, f"scout dev did not print {expected!r}"
    for service in SERVICES:
        assert f"{suite.url(service)}/docs" in out
    children = psutil.Process(suite.proc.pid).children(recursive=True)
    assert len(children) >= 8  # four APIs and four workers

    clerk_id = f"user_e2e{uuid.uuid4().hex[:10]}"
    auth = {"Authorization": f"Bearer {suite.token(clerk_id)}"}
    async with httpx.AsyncClient(timeout=15) as http:
        # 1. The user arrives by Clerk webhook.
        body, headers = clerk_delivery(clerk_id, f"{clerk_id}@example.com")
        r = await http.post(
            f"{suite.url('identity')}/webhooks/clerk", content=body, headers=headers
        )
        assert r.status_code == 200, r.text
        me = (await http.get(f"{suite.url('identity')}/me", headers=auth)).json()
        assert me["user_id"] == clerk_id and me["email"] == f"{clerk_id}@example.com"

        async def billing_status() -> dict:
            r = await http.get(f"{suite.url('billing')}/billing/status", headers=auth)
            return r.json() if r.status_code == 200 else {}

        # 2. Billing provisions the user from identity's event, then Stripe says "subscribed".
        async def provisioned() -> bool:
            return bool(await billing_status())

        await eventually(provisioned, within=30, interval=0.2)
        stripe = FakeStripe()
        sub = stripe.subscription(
            customer=f"cus_{uuid.uuid4().hex[:12]}",
            price="price_growth_monthly",
            status="active",
            user_id=clerk_id,
        )
        event = stripe.event("customer.subscription.created", sub)
        r = await http.post(
            f"{suite.url('billing')}/webhooks/stripe",
            content=event,
            headers={
                "Stripe-Signature": sign(event, DEV_STRIPE_WEBHOOK_SECRET),
                "content-type": "application/json",
            },
        )
        assert r.status_code == 200, r.text

        async def subscribed() -> bool:
            status = await billing_status()
            return status.get("plan") == "growth" and status.get("subscription_status") == "active"

        await eventually(subscribed, within=30, interval=0.2)

        # 3. A campaign (billing is asked over NATS whether the plan allows it).
        r = await http.post(
            f"{suite.url('campaign')}/campaigns", json={"name": "Spring launch"}, headers=auth
        )
        assert r.status_code == 201, r.text
        campaign_id = r.json()["id"]

        # 4. A search job runs on the scraping worker until it completes.
        r = await http.post(
            f"{suite.url('scraping')}/jobs",
            json={
                "campaign_id": campaign_id,
                "platform": "tiktok",
                "keywords": ["fitness"],
                "target_results": 20,
            },
            headers=auth,
        )
        assert r.status_code == 202, r.text
        job_id = r.json()["id"]
        job: dict = {}

        async def job_done() -> bool:
            nonlocal job
            job = (await http.get(f"{suite.url('scraping')}/jobs/{job_id}", headers=auth)).json()
            assert job.get("status") not in ("error", "timeout", "cancelled"), job
            return job.get("status") == "completed"

        await eventually(job_done, within=60, interval=0.3)
        results = await http.get(
            f"{suite.url('scraping')}/jobs/{job_id}/results", params={"limit": 10}, headers=auth
        )
        creators = results.json()["items"]
        assert creators, results.text

        # 5. Creators go to a list, 6. which exports as CSV.
        r = await http.post(
            f"{suite.url('campaign')}/lists", json={"name": "Shortlist"}, headers=auth
        )
        assert r.status_code == 201, r.text
        list_id = r.json()["id"]
        items = [
            {
                "platform": c["platform"],
                "external_id": c["external_id"],
                "handle": c["username"],
                "display_name": c.get("display_name"),
                "followers": c.get("followers"),
            }
            for c in creators
        ]
        r = await http.post(
            f"{suite.url('campaign')}/lists/{list_id}/items", json={"items": items}, headers=auth
        )
        assert r.status_code == 200, r.text
        assert r.json()["added"] == len(items)
        r = await http.get(f"{suite.url('campaign')}/lists/{list_id}/export.csv", headers=auth)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(r.text)))
        assert len(rows) == len(items)
        assert {i["handle"] for i in items} <= {v for row in rows for v in row.values()}

    # Ctrl-C stops everything: scout dev exits 0 and none of its processes survive.
    pids = [c.pid for c in children]
    suite.proc.send_signal(signal.SIGINT)
    assert suite.proc.wait(60) == 0, suite.output()[-4000:]
    survivors = [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"]
    assert survivors == [], f"left running: {survivors}"
