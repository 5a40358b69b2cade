"""Retention: each service prunes only its own finished rows past their retention, in chunks;
a configuration whose inbox forgets events the stream can still deliver is refused."""

import uuid

import psycopg
import pytest
import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine

from shared import retention, sqltrace
from shared.db import libpq_url
from shared.events.envelope import stream_name
from shared.events.streams import EVENT_MAX_AGE_S, connect, ensure_streams
from shared.settings import Settings

from .support.cli import run_scout

OLD, NEW = "now() - interval '400 days'", "now()"


async def insert(engine: AsyncEngine, sql: str, **params) -> None:
    async with engine.begin() as conn:
        await conn.execute(sa.text(sql), params)


async def ids(engine: AsyncEngine, table: str) -> set[str]:
    async with engine.connect() as conn:
        return {str(r) for r in await conn.scalars(sa.text(f"SELECT id FROM {table}"))}


async def row(engine: AsyncEngine, table: str, values: str, columns: str) -> str:
    row_id = str(uuid.uuid4())
    await insert(engine, f"INSERT INTO {table} (id, {columns}) VALUES ('{row_id}', {values})")
    return row_id


async def test_a_service_prunes_its_own_finished_rows_past_retention_and_nothing_else(
    committed: AsyncEngine,
):
    ev = "service, type, aggregate_type, aggregate_id, data, occurred_at"
    events = {
        "old": await row(committed, "events", f"'billing', 't', 'a', '1', '{{}}', {OLD}", ev),
        "recent": await row(committed, "events", f"'billing', 't', 'a', '1', '{{}}', {NEW}", ev),
        "unpublished": await row(committed, "events", f"'billing', 't', 'a', '1', '{{}}', {OLD}", ev),
        "other": await row(committed, "events", f"'campaign', 't', 'a', '1', '{{}}', {OLD}", ev),
    }  # fmt: skip
    # Published: the relay has taken them off the pending list.
    await insert(committed, f"DELETE FROM events_pending WHERE id <> '{events['unpublished']}'")
    ib = "service, consumer, event_id, created_at"
    inbox = {
        "old": await row(committed, "inbox", f"'billing', 'b', 'e1', {OLD}", ib),
        "recent": await row(committed, "inbox", f"'billing', 'b', 'e2', {NEW}", ib),
        "other": await row(committed, "inbox", f"'identity', 'i', 'e1', {OLD}", ib),
    }
    at = "service, consumer, event_id, attempts, updated_at"
    attempts = {
        "old": await row(committed, "event_attempts", f"'billing', 'b', 'e1', 1, {OLD}", at),
        "recent": await row(committed, "event_attempts", f"'billing', 'b', 'e2', 1, {NEW}", at),
    }
    wh = "source, event_id, event_type, status, created_at"
    webhooks = {
        "old": await row(committed, "webhook_events", f"'stripe', 'w1', 't', 'completed', {OLD}", wh),
        "failed": await row(committed, "webhook_events", f"'stripe', 'w2', 't', 'failed', {OLD}", wh),
        "live": await row(committed, "webhook_events", f"'stripe', 'w3', 't', 'processing', {OLD}", wh),
        "clerk": await row(committed, "webhook_events", f"'clerk', 'w4', 't', 'completed', {OLD}", wh),
    }  # fmt: skip
    bj = "service, job_type, status, updated_at"
    jobs = {
        "done": await row(committed, "background_jobs", f"'billing', 'x', 'completed', {OLD}", bj),
        "failed": await row(committed, "background_jobs", f"'billing', 'x', 'failed', {OLD}", bj),
        "pending": await row(committed, "background_jobs", f"'billing', 'x', 'pending', {OLD}", bj),
        "recent": await row(committed, "background_jobs", f"'billing', 'x', 'completed', {NEW}", bj),
        "other": await row(committed, "background_jobs", f"'campaign', 'x', 'completed', {OLD}", bj),
    }  # fmt: skip
    rl = "key, tat"
    limits = {
        "idle": await row(committed, "rate_limits", f"'billing:checkout:u1', {OLD}", rl),
        "busy": await row(committed, "rate_limits", "'billing:checkout:u2', now() + interval '1 minute'", rl),
        "other": await row(committed, "rate_limits", f"'campaign:lists:u1', {OLD}", rl),
    }  # fmt: skip
    dl = "service, consumer, subject, payload, error, deliveries, status, updated_at"
    letters = {
        "replayed": await row(committed, "dead_letters", f"'billing', 'b', 's', 'p', 'e', 1, 'replayed', {OLD}", dl),
        "discarded": await row(committed, "dead_letters", f"'billing', 'b', 's', 'p', 'e', 1, 'discarded', {OLD}", dl),
        "pending": await row(committed, "dead_letters", f"'billing', 'b', 's', 'p', 'e', 1, 'pending', {OLD}", dl),
        "other": await row(committed, "dead_letters", f"'scraping', 'b', 's', 'p', 'e', 1, 'replayed', {OLD}", dl),
    }  # fmt: skip
    ik = "service, clerk_user_id, key, method, path, request_hash, locked_until, created_at"
    keys = {
        "old": await row(committed, "idempotency_keys", f"'billing', 'u1', 'k1', 'POST', '/p', 'h', now(), {OLD}", ik),
        "recent": await row(committed, "idempotency_keys", f"'billing', 'u1', 'k2', 'POST', '/p', 'h', now(), {NEW}", ik),
        "other": await row(committed, "idempotency_keys", f"'campaign', 'u1', 'k3', 'POST', '/p', 'h', now(), {OLD}", ik),
    }  # fmt: skip

    deleted = await retention.prune(committed, "billing", Settings())

    assert deleted == {
        "events": 1, "inbox": 1, "event_attempts": 1, "webhook_events": 2,
        "background_jobs": 2, "rate_limits": 1, "dead_letters": 2, "idempotency_keys": 1,
    }  # fmt: skip
    assert await ids(committed, "events") == {events[k] for k in ("recent", "unpublished", "other")}
    assert await ids(committed, "inbox") == {inbox["recent"], inbox["other"]}
    assert await ids(committed, "event_attempts") == {attempts["recent"]}
    assert await ids(committed, "webhook_events") == {webhooks["live"], webhooks["clerk"]}
    assert await ids(committed, "background_jobs") == {
        jobs[k] for k in ("pending", "recent", "other")
    }
    assert await ids(committed, "rate_limits") == {limits["busy"], limits["other"]}
    assert await ids(committed, "dead_letters") == {letters["pending"], letters["other"]}
    assert await ids(committed, "idempotency_keys") == {keys["recent"], keys["other"]}
    # Campaign receives no webhooks: it never touches them.
    assert (await retention.prune(committed, "campaign", Settings()))["events"] == 1
    assert "webhook_events" not in await retention.prune(committed, "campaign", Settings())


async def test_a_backlog_larger_than_a_chunk_goes_in_several_transactions(
    committed: AsyncEngine, monkeypatch
):
    monkeypatch.setattr(retention, "CHUNK", 3)
    async with committed.begin() as conn:
        await conn.execute(
            sa.text(
                "INSERT INTO inbox (service, consumer, event_id, created_at)"
                " SELECT 'scraping', 'c', 'e' || n, now() - interval '30 days'"
                " FROM generate_series(1, 10) n"
            )
        )
    statements: list[str] = []

    def seen(cursor, statement, parameters) -> None:
        statements.append(statement)

    with sqltrace.recording(committed, seen):
        assert await retention.prune_table(committed, "scraping", retention.RULES[1], 14) == 10
    assert len([s for s in statements if s.startswith("DELETE FROM inbox")]) == 4  # 3+3+3+1


async def test_the_report_shows_each_tables_retention_oldest_row_and_backlog(
    committed: AsyncEngine, database_url: str
):
    await insert(
        committed,
        "INSERT INTO inbox (service, consumer, event_id, created_at) VALUES"
        " ('billing', 'b', 'e1', now() - interval '20 days'), ('billing', 'b', 'e2', now())",
    )
    with psycopg.connect(libpq_url(database_url)) as conn:
        report = {r["table"]: r for r in retention.report(conn, Settings())}
    assert report["inbox"]["rows"] == 2 and report["inbox"]["past_retention"] == 1
    assert report["inbox"]["oldest"] is not None and report["inbox"]["retention_days"] == 14
    assert report["dead_letters"]["rows"] == 0 and report["dead_letters"]["oldest"] is None


def test_an_inbox_that_forgets_sooner_than_the_stream_delivers_is_refused():
    with pytest.raises(ValidationError, match=r"RETENTION_INBOX_DAYS .* NATS_STREAM_MAX_AGE_DAYS"):
        Settings(retention_inbox_days=3, nats_stream_max_age_days=7)
    with pytest.raises(ValidationError, match="RETENTION_SCHEDULE"):
        Settings(retention_schedule="every night")
    assert Settings(retention_inbox_days=7, nats_stream_max_age_days=7)


def test_a_worker_refuses_to_start_with_such_a_configuration(monkeypatch):
    result = run_scout(
        monkeypatch, "worker", "billing", retention_inbox_days="1", nats_stream_max_age_days="2"
    )
    assert result.exit_code != 0
    assert "RETENTION_INBOX_DAYS (1) is shorter than NATS_STREAM_MAX_AGE_DAYS (2)" in str(
        result.exception
    )


async def test_existing_streams_get_the_configured_max_age_in_place(nats_url: str, nats_prefix):
    nc = await connect(nats_url, name="retention-test")
    js = nc.jetstream()
    try:
        await ensure_streams(js, nats_prefix)
        name = stream_name("BILLING", nats_prefix)
        assert (await js.stream_info(name)).config.max_age == EVENT_MAX_AGE_S
        await js.publish(f"{nats_prefix}.billing.subscription.changed.v1", b"{}")
        await ensure_streams(js, nats_prefix, max_age=3 * 24 * 3600.0)
        info = await js.stream_info(name)
        assert info.config.max_age == 3 * 24 * 3600.0 and info.state.messages == 1  # kept
        work = await js.stream_info(stream_name("SCRAPING_WORK", nats_prefix))
        assert work.config.max_age == 0  # work items stay until acknowledged
    finally:
        await nc.close()


async def test_scraping_prunes_finished_enrichments_and_items_but_keeps_stored_profiles(
    committed: AsyncEngine,
):
    user = await row(committed, "users", f"'user_{uuid.uuid4().hex[:8]}'", "user_id")
    en = "user_id, status, total, done, failed, completed_at"
    enrichments = {
        "completed": await row(committed, "scraping_enrichments", f"'{user}', 'completed', 1, 1, 0, {OLD}", en),
        "error": await row(committed, "scraping_enrichments", f"'{user}', 'error', 1, 0, 1, {OLD}", en),
        "recent": await row(committed, "scraping_enrichments", f"'{user}', 'completed', 1, 1, 0, {NEW}", en),
        "live": await row(committed, "scraping_enrichments", f"'{user}', 'processing', 1, 0, 0, NULL", en),
    }  # fmt: skip
    it = "enrichment_id, position, platform, external_id, handle, status"
    items = {
        name: await row(committed, "scraping_enrichment_items", f"'{e}', 0, 'tiktok', 'c1', 'h', 'cached'", it)
        for name, e in enrichments.items()
    }  # fmt: skip
    cp = "platform, external_id, handle, profile, enriched_at"
    profile = await row(
        committed, "scraping_creator_profiles", f"'tiktok', 'c1', 'h', '{{}}', {OLD}", cp
    )

    assert "scraping_enrichments" not in await retention.prune(committed, "campaign", Settings())
    assert len(await ids(committed, "scraping_enrichments")) == 4
    deleted = await retention.prune(committed, "scraping", Settings())

    assert deleted["scraping_enrichments"] == 2
    assert await ids(committed, "scraping_enrichments") == {
        enrichments["recent"],
        enrichments["live"],
    }
    assert await ids(committed, "scraping_enrichment_items") == {items["recent"], items["live"]}
    assert await ids(committed, "scraping_creator_profiles") == {profile}  # the cache stays
    # A shorter setting prunes the recent one too (it finished just now: past 0.0 days).
    short = Settings(retention_enrichments_days=1e-9)
    assert (await retention.prune(committed, "scraping", short))["scraping_enrichments"] == 1
    assert await ids(committed, "scraping_enrichments") == {enrichments["live"]}
