"""Worker metrics: sampled from the database and JetStream, served with health probes."""

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import sqlalchemy as sa
from nats.js.api import ConsumerConfig
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncSession

from shared import metrics
from shared.events.envelope import stream_name
from shared.events.health import DatabaseHealth, Heartbeat
from shared.events.streams import connect, ensure_streams
from tests.factories import make_campaign, make_job, make_user
from tests.support.wait import eventually
from tooling.embedded import free_port


def value(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


@pytest.mark.committed
async def test_database_gauges_reflect_outbox_dead_letters_jobs_and_reservations(committed):
    async with AsyncSession(committed, expire_on_commit=False) as s:
        user = await make_user(s)
        campaign = await make_campaign(s, user)
        await make_job(s, campaign, status="processing")
        await make_job(s, campaign, status="completed")
        await s.execute(
            sa.text(
                "INSERT INTO events (service, type, aggregate_type, aggregate_id, created_at) "
                "VALUES ('billing', 'billing.x', 'user', '1', now() - interval '90 seconds'), "
                "('billing', 'billing.x', 'user', '2', now())"
            )
        )
        await s.execute(
            sa.text(
                "INSERT INTO dead_letters (service, consumer, subject, payload, error, deliveries) "
                "VALUES ('billing', 'c', 's', '{}', 'boom', 5)"
            )
        )
        await s.execute(
            sa.text(
                "INSERT INTO background_jobs (service, job_type, status) "
                "VALUES ('billing', 'trial_expiry', 'failed'), ('billing', 'trial_expiry', 'pending')"
            )
        )
        await s.execute(
            sa.text(
                "INSERT INTO usage_reservations "
                "(user_id, resource, amount, idempotency_key, expires_at, status) "
                "VALUES (:u, 'creators', 5, :k, :e, 'released')"
            ),
            {"u": user.id, "k": uuid.uuid4().hex, "e": datetime.now(UTC) + timedelta(minutes=5)},
        )
        await s.commit()

    await metrics.sample_database(committed, "billing")
    await metrics.sample_database(committed, "scraping")

    assert value("scout_outbox_unpublished_events", service="billing") == 2
    assert 85 <= value("scout_outbox_lag_seconds", service="billing") < 300
    assert value("scout_outbox_lag_seconds", service="scraping") == 0
    assert value("scout_dead_letters", service="billing", status="pending") == 1
    jobs = {"service": "billing", "job_type": "trial_expiry"}
    assert value("scout_background_jobs", **jobs, status="failed") == 1
    assert value("scout_usage_reservations", resource="creators", status="released") == 1
    assert value("scout_search_jobs", status="processing") == 1

    # When the dead letter is dealt with, its label set goes rather than freezing at 1.
    async with committed.begin() as conn:
        await conn.execute(sa.text("DELETE FROM dead_letters WHERE service = 'billing'"))
    await metrics.sample_database(committed, "billing")
    assert value("scout_dead_letters", service="billing", status="pending") is None


async def test_consumer_lag_counts_undelivered_messages_per_durable(nats_url, nats_prefix):
    nc = await connect(nats_url, name="metrics-test")
    try:
        js = nc.jetstream()
        await ensure_streams(js, nats_prefix)
        stream = stream_name("IDENTITY", nats_prefix)
        subject = f"{nats_prefix}.identity.user.created.v1"
        await js.add_consumer(stream, ConsumerConfig(durable_name="billing_users"))
        for i in range(3):
            await js.publish(subject, b"{}", headers={"Nats-Msg-Id": f"m{i}"})
        await metrics.sample_consumers(js, "billing", nats_prefix)
        assert (
            value(
                "scout_consumer_pending_messages",
                service="billing",
                consumer="billing_users",
                stream=stream,
            )
            == 3
        )
        assert (
            value(
                "scout_consumer_pending_messages",
                service="campaign",
                consumer="billing_users",
                stream=stream,
            )
            is None
        )  # only a service's own durables are reported under its name
    finally:
        await nc.close()


async def test_worker_endpoint_serves_metrics_health_and_readiness(engine):
    """/readyz: NATS connected and the database heartbeat fresh (gate open, a beat answered)."""
    port = free_port()
    health = DatabaseHealth(engine, name="metrics-test", probe_max=0.1)
    heartbeat = Heartbeat(health, every=0.05)
    await heartbeat.start()
    nats_up = True
    readiness = metrics.WorkerReadiness(heartbeat, lambda: nats_up)
    with metrics.serving(port, "127.0.0.1", readiness):
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            assert (await client.get("/healthz")).status_code == 200
            assert (await client.get("/readyz")).status_code == 200  # a beat answered
            nats_up = False
            assert (await client.get("/readyz")).status_code == 503  # NATS gone
            nats_up = True
            health.mark_down("the test says so")
            assert (await client.get("/readyz")).status_code == 503  # database gate closed

            async def ready_again() -> bool:  # the gate's own probe finds the database
                return (await client.get("/readyz")).status_code == 200

            await eventually(ready_again, within=5)
            body = (await client.get("/metrics")).text
            assert "scout_outbox_lag_seconds" in body and "scout_consumer_pending_messages" in body
    await heartbeat.stop()
    health.close()
