"""Nothing grows forever: under a sustained stream, every pruned table stays bounded.

Retention is given in fractional days (seconds' worth here) and the retention job runs every
2 s (a six-field cron: the last field is seconds). The billing and campaign workers run as in
production; the test keeps writing for ~30 s: campaign.deleted events (campaign's relay
publishes them, billing's consumer applies them into its inbox), finished webhooks, idle
rate-limit keys, replayed dead letters and attempt counts. Every table's row count must stay
under what retention allows, far below what was written.
"""

import asyncio
import time
import uuid

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from shared.events.outbox import record_event
from shared.models import UserUsage
from shared.retention import RULES

from ..factories import make_user
from ..support.services import running_worker
from ..support.wait import eventually

RETENTION_S = 4.0
DAYS = RETENTION_S / 86_400
EVENTS_PER_S = 40  # aimed at; the bounds use the rate the writer achieved
WRITE_FOR_S = 30.0
WARM_UP_S = 10.0
TABLES = ("events", "inbox", "event_attempts", "webhook_events", "background_jobs",
          "rate_limits", "dead_letters")  # fmt: skip
# Rows a table may hold: what arrives during retention + one schedule interval + a claim and
# a pass, with slack for a busy machine.
WINDOW_S = RETENTION_S + 2 + 1 + 4


async def write_for(engine: AsyncEngine, user_id: uuid.UUID, seconds: float) -> dict[str, int]:
    written = dict.fromkeys(TABLES, 0)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        async with AsyncSession(engine) as session, session.begin():
            for _ in range(EVENTS_PER_S // 5):
                cid = uuid.uuid4()
                await record_event(
                    session, service="campaign", type="campaign.campaign.deleted",
                    aggregate_type="campaign", aggregate_id=cid,
                    data={"campaign_id": cid, "user_id": user_id}, user_id=user_id,
                )  # fmt: skip
            written["events"] += EVENTS_PER_S // 5
            tick = {"t": uuid.uuid4().hex}
            for statement in (
                "INSERT INTO webhook_events (source, event_id, event_type, status)"
                " VALUES ('stripe', :t, 'invoice.paid', 'completed')",
                "INSERT INTO rate_limits (key, tat) VALUES ('billing:test:' || :t, now())",
                "INSERT INTO dead_letters (service, consumer, subject, payload, error, deliveries,"
                " status) VALUES ('billing', 'c', 's', 'p', 'e', 1, 'replayed')",
                "INSERT INTO event_attempts (service, consumer, event_id, attempts)"
                " VALUES ('billing', 'c', :t, 1)",
            ):
                await session.execute(sa.text(statement), tick)
        for table in ("webhook_events", "rate_limits", "dead_letters", "event_attempts"):
            written[table] += 1
        await asyncio.sleep(0.2)  # the writer's pace, not a synchronisation
    written["inbox"] = written["events"]  # billing applies each event once: one inbox row
    return written


# Of the scheduled jobs, only finished runs are pruned: each recurring schedule (seven between
# the two workers) keeps its next run pending, whatever retention does.
COUNTED = {t: "true" for t in TABLES} | {
    "background_jobs": next(r.prunable for r in RULES if r.table == "background_jobs")
}


async def counts(engine: AsyncEngine) -> dict[str, int]:
    async with engine.connect() as conn:
        return {
            t: await conn.scalar(sa.text(f"SELECT count(*) FROM {t} WHERE {COUNTED[t]}"))
            for t in TABLES
        }


async def test_every_pruned_table_stays_bounded_under_a_sustained_stream(
    committed: AsyncEngine, service_settings
):
    settings = service_settings.model_copy(update={
        **{f"retention_{t}_days": DAYS for t in ("events", "inbox", "webhook_events",
                                                  "background_jobs", "rate_limits",
                                                  "dead_letters")},
        "nats_stream_max_age_days": DAYS,  # the inbox keeps ids as long as the stream events
        "retention_schedule": "* * * * * */2",
    })  # fmt: skip
    async with AsyncSession(committed) as session, session.begin():
        user = await make_user(session)
        await session.execute(
            sa.update(UserUsage).where(UserUsage.user_id == user.id)
            .values(usage_campaigns_current=1_000_000)
        )  # fmt: skip
        user_id = user.id
    samples: list[dict[str, int]] = []
    async with running_worker("billing", settings), running_worker("campaign", settings):
        writer = asyncio.create_task(write_for(committed, user_id, WRITE_FOR_S))
        started = time.monotonic()
        while not writer.done():
            if time.monotonic() - started > WARM_UP_S:
                samples.append(await counts(committed))
            await asyncio.sleep(0.5)  # the sampling pace
        written = writer.result()

        async def applied() -> bool:  # billing kept up: every event reached its inbox
            async with committed.connect() as conn:
                used = await conn.scalar(
                    sa.text("SELECT usage_campaigns_current FROM user_usage WHERE user_id = :u"),
                    {"u": user_id},
                )
            return used == 1_000_000 - written["events"]

        await eventually(applied, within=30)
    peak = {t: max(s[t] for s in samples) for t in TABLES}
    print(f"\nbounded storage: written={written} peak={peak} last={samples[-1]}")
    for table in ("events", "inbox", "webhook_events", "rate_limits", "dead_letters",
                  "event_attempts"):  # fmt: skip
        bound = written[table] / WRITE_FOR_S * WINDOW_S  # achieved rate times what retention allows
        assert peak[table] <= bound, f"{table}: {peak[table]} rows > {bound:.0f}"
        assert peak[table] <= written[table] / 2, f"{table}: not pruned"
    # The retention job's own finished runs (every 2 s per service) are pruned too.
    assert peak["background_jobs"] <= 2 * (WINDOW_S / 2 + 2)
