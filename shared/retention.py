"""Retention: the rows that would otherwise grow forever are pruned by every worker, on schedule.

Each service's worker runs the ``retention.prune`` job (``RETENTION_SCHEDULE``) and deletes ITS
OWN old rows only (rows carry their service, webhooks their source, rate-limit keys their
service prefix), in chunks of :data:`CHUNK` rows, each chunk its own short transaction whose
``FOR UPDATE SKIP LOCKED`` never waits on a row someone is using. What goes, and after how long:

=================  ========================================  ==================================
table              rows pruned                               kept for (days, setting)
=================  ========================================  ==================================
events             published (the outbox and audit trail),   RETENTION_EVENTS_DAYS
                   aged by when they occurred
inbox              applied event ids                         RETENTION_INBOX_DAYS
event_attempts     attempt counts nobody touched since       RETENTION_INBOX_DAYS
webhook_events     completed or failed webhooks              RETENTION_WEBHOOK_EVENTS_DAYS
background_jobs    completed or failed scheduled jobs        RETENTION_BACKGROUND_JOBS_DAYS
rate_limits        keys idle (budget full again) since       RETENTION_RATE_LIMITS_DAYS
dead_letters       replayed or discarded dead letters        RETENTION_DEAD_LETTERS_DAYS
idempotency_keys   stored first responses (and stale claims) RETENTION_IDEMPOTENCY_KEYS_DAYS
scraping_          finished enrichments (items cascade;      RETENTION_ENRICHMENTS_DAYS
enrichments        stored creator profiles stay: the cache)
=================  ========================================  ==================================

Unpublished events, pending dead letters and live jobs are never pruned, however old. Usage
reservations are never pruned: ``billing_usage_months`` (what ``GET /billing/usage/history``
reads) equals a recount of them, so deleting a confirmed one takes its amount out of its month.
"""

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from shared.scheduler import Job, JobHandler, Recurring
from shared.settings import Settings

log = logging.getLogger("scout.retention")

JOB_TYPE = "retention.prune"
CHUNK = 5000
# One run deletes at most this many rows per table (the rest goes next run), so a first prune
# of a large backlog stays far inside the job's lease.
MAX_ROWS_PER_RUN = 200_000
SECONDS_PER_DAY = 86_400
# Inbound webhooks carry their source, not a service: the service that receives each source.
WEBHOOK_SOURCES = {"identity": "clerk", "billing": "stripe"}


@dataclass(frozen=True)
class Rule:
    """Which rows of ``table`` may go once ``age_column`` is older than the setting's days."""

    table: str
    setting: str  # Settings attribute holding the retention in days
    age_column: str
    prunable: str  # SQL predicate, besides age, of the rows that may go
    what: str  # for people (scout db inspect)

    def days(self, settings: Settings) -> float:
        return float(getattr(settings, self.setting))

    def owner(self, service: str) -> tuple[str, dict[str, Any]] | None:
        """The predicate selecting ``service``'s own rows (None: it has none here)."""
        if self.table == "webhook_events":
            source = WEBHOOK_SOURCES.get(service)
            return ("source = :owner", {"owner": source}) if source else None
        if self.table == "rate_limits":
            return ("key LIKE :owner", {"owner": f"{service}:%"})
        if self.table.startswith("scraping_"):  # scraping's own tables carry no service
            return ("true", {}) if service == "scraping" else None
        return ("service = :owner", {"owner": service})


RULES: tuple[Rule, ...] = (
    # Published: no longer pending. Aged by when they occurred (no publish time is kept).
    Rule("events", "retention_events_days", "occurred_at",
         "NOT EXISTS (SELECT 1 FROM events_pending AS p WHERE p.id = events.id)",
         "published events"),
    Rule("inbox", "retention_inbox_days", "created_at", "true", "applied event ids"),
    Rule("event_attempts", "retention_inbox_days", "updated_at", "true",
         "attempt counts of failed events"),
    Rule("webhook_events", "retention_webhook_events_days", "created_at",
         "status IN ('completed', 'failed')", "finished webhooks"),
    Rule("background_jobs", "retention_background_jobs_days", "updated_at",
         "status IN ('completed', 'failed')", "finished scheduled jobs"),
    Rule("rate_limits", "retention_rate_limits_days", "tat", "true", "idle rate-limit keys"),
    Rule("dead_letters", "retention_dead_letters_days", "updated_at",
         "status IN ('replayed', 'discarded')", "replayed or discarded dead letters"),
    # Past the replay window a key is forgotten anyway (shared.web.idempotency).
    Rule("idempotency_keys", "retention_idempotency_keys_days", "created_at", "true",
         "idempotency keys and their first responses"),
    # Items cascade with their enrichment; the stored creator profiles (the cache) stay.
    Rule("scraping_enrichments", "retention_enrichments_days", "completed_at",
         "status IN ('completed', 'error')", "finished enrichments and their items"),
)  # fmt: skip


async def prune_table(engine: AsyncEngine, service: str, rule: Rule, days: float) -> int:
    """Delete ``service``'s rows of ``rule.table`` older than ``days``; returns how many."""
    owner = rule.owner(service)
    if owner is None:
        return 0
    where, params = owner
    delete = sa.text(
        f"DELETE FROM {rule.table} WHERE id IN ("
        f" SELECT id FROM {rule.table} WHERE {where} AND {rule.prunable}"
        f" AND {rule.age_column} < now() - make_interval(secs => :seconds)"
        " LIMIT :chunk FOR UPDATE SKIP LOCKED)"
    )
    params |= {"seconds": days * SECONDS_PER_DAY, "chunk": CHUNK}
    total = 0
    while total < MAX_ROWS_PER_RUN:
        async with engine.begin() as conn:
            deleted = (await conn.execute(delete, params)).rowcount
        total += deleted
        if deleted < CHUNK:
            break
    return total


async def prune(engine: AsyncEngine, service: str, settings: Settings) -> dict[str, int]:
    """Run every retention rule for ``service``; table → rows deleted."""
    return {
        rule.table: await prune_table(engine, service, rule, rule.days(settings))
        for rule in RULES
        if rule.owner(service) is not None
    }


def retention_job(engine: AsyncEngine, service: str, settings: Settings) -> JobHandler:
    """The ``retention.prune`` handler: chunks commit on their own, the job records the counts."""

    async def run(session: AsyncSession, job: Job) -> dict[str, Any]:
        deleted = await prune(engine, service, settings)
        if any(deleted.values()):
            log.info("retention.pruned", extra={"service": service, **deleted})
        return {"deleted": deleted}

    return run


def retention_schedule(settings: Settings) -> Recurring:
    # Low priority (runs after the service's own due jobs); no retries: the next run catches up.
    return Recurring("retention", settings.retention_schedule, JOB_TYPE, priority=200,
                     max_retries=0)  # fmt: skip


def report(conn: Any, settings: Settings) -> list[dict[str, Any]]:
    """Per table: what is pruned, after how long, how many such rows there are, the oldest one,
    and how many are already past retention (waiting for the next run). ``conn`` is a psycopg
    (sync) connection."""
    rows = []
    for rule in RULES:
        days = rule.days(settings)
        count, oldest, overdue = conn.execute(
            f"SELECT count(*), min({rule.age_column}),"
            f" count(*) FILTER (WHERE {rule.age_column} < now() - make_interval(secs => %s))"
            f" FROM {rule.table} WHERE {rule.prunable}",
            (days * SECONDS_PER_DAY,),
        ).fetchone()
        rows.append(
            {
                "table": rule.table,
                "pruned": rule.what,
                "retention_days": days,
                "setting": rule.setting.upper(),
                "rows": count,
                "oldest": oldest.isoformat() if isinstance(oldest, datetime) else None,
                "past_retention": overdue,
            }
        )
    return rows
