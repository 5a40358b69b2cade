"""Messaging tables every service writes, each row tagged with the service (or webhook source)
it belongs to: the outbox (``events``), inboxes, dead letters, background jobs, inbound webhook
events and rate limits."""

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field

from .base import TableBase, counter, enum_column, jsonb, one_of, tz_timestamp
from .enums import (
    BackgroundJobStatus,
    DeadLetterStatus,
    IdempotencyStatus,
    Service,
    WebhookSource,
    WebhookStatus,
)


def _service():
    return enum_column(Service)


class Event(TableBase, table=True):
    """Outbox and audit trail. ``id`` is the envelope id (and the ``Nats-Msg-Id``).

    A row is written once and never updated: whether it is published is whether it still has a
    row in ``events_pending`` (:class:`PendingEvent`), which the ``trg_events_pending`` trigger
    inserts with it.
    """

    __tablename__ = "events"
    __table_args__ = (
        one_of("service", Service),
        sa.CheckConstraint("version >= 1", name="version_positive"),
        # Billing's trial-expiry check (by type and aggregate).
        sa.Index("ix_events_aggregate_type_aggregate_id", "aggregate_type", "aggregate_id"),
        # The audit listing and the dashboard's recent activity of one user.
        sa.Index("ix_events_user_id_occurred_at", "user_id", "occurred_at"),
        # No index on type alone: no query reads one, and each index is paid for on every event.
        # Retention: one service's rows that occurred before a cutoff.
        sa.Index("ix_events_service_occurred_at", "service", "occurred_at"),
    )

    # Insertion order for the relay (an identity column, not the primary key).
    seq: int = Field(
        default=None,
        sa_type=sa.BigInteger,
        nullable=False,
        sa_column_kwargs={"server_default": sa.Identity(always=False)},
    )
    service: str = _service()
    type: str = Field(sa_type=sa.String(100), nullable=False)
    version: int = Field(
        default=1, nullable=False, sa_column_kwargs={"server_default": sa.text("1")}
    )
    aggregate_type: str = Field(sa_type=sa.String(50), nullable=False)
    aggregate_id: str = Field(sa_type=sa.Text, nullable=False)
    # The user the event concerns, for audit queries and purges (no FK: the trail outlives rows).
    user_id: uuid.UUID | None = Field(default=None, sa_type=sa.Uuid)
    correlation_id: str | None = Field(default=None, sa_type=sa.String(100))
    causation_id: str | None = Field(default=None, sa_type=sa.String(100))
    data: dict[str, Any] = jsonb()
    occurred_at: datetime = Field(
        default=None,
        sa_type=sa.DateTime(timezone=True),
        nullable=False,
        sa_column_kwargs={"server_default": sa.func.now()},
    )


class PendingEvent(TableBase, table=True):
    """An ``events`` row not yet published, by the same ``id``: the outbox the relay reads.

    Inserted by the ``trg_events_pending`` trigger in the statement that inserts the event (any
    writer, any number of rows), deleted by the relay once JetStream has acknowledged the event.
    ``publish_attempts`` and ``last_error`` count the failed attempts at it. No foreign key:
    events are only ever deleted by retention, which keeps every row that has one of these.
    """

    __tablename__ = "events_pending"
    __table_args__ = (
        one_of("service", Service),
        # The relay's claim: one service's rows in seq order.
        sa.Index("ix_events_pending_service_seq", "service", "seq"),
    )

    service: str = _service()
    seq: int = Field(sa_type=sa.BigInteger, nullable=False)
    publish_attempts: int = counter()
    last_error: str | None = Field(default=None, sa_type=sa.Text)


class InboxEntry(TableBase, table=True):
    """Ids of messages a consumer has applied, written in the same transaction as the effect."""

    __tablename__ = "inbox"
    __table_args__ = (
        sa.UniqueConstraint("consumer", "event_id"),
        one_of("service", Service),
        sa.Index("ix_inbox_service_created_at", "service", "created_at"),  # retention
        # "Which consumers have applied event X?" (operators tracing an event).
        sa.Index("ix_inbox_event_id", "event_id"),
    )

    service: str = _service()
    consumer: str = Field(sa_type=sa.String(100), nullable=False)
    # Envelope ids are UUIDs; webhook ids (svix-id) are not, so this is text.
    event_id: str = Field(sa_type=sa.String(255), nullable=False)
    subject: str | None = Field(default=None, sa_type=sa.String(200))


class DeadLetter(TableBase, table=True):
    """Messages a consumer gave up on: listed and replayed with ``scout events dead-letters``."""

    __tablename__ = "dead_letters"
    __table_args__ = (
        one_of("service", Service),
        one_of("status", DeadLetterStatus),
        sa.Index("ix_dead_letters_status_created_at", "status", "created_at"),
    )

    service: str = _service()
    consumer: str = Field(sa_type=sa.String(100), nullable=False)
    stream: str | None = Field(default=None, sa_type=sa.String(100))
    subject: str = Field(sa_type=sa.String(200), nullable=False)
    event_id: str | None = Field(default=None, sa_type=sa.String(255), index=True)
    payload: str = Field(sa_type=sa.Text, nullable=False)
    headers: dict[str, Any] = jsonb()
    error: str = Field(sa_type=sa.Text, nullable=False)
    deliveries: int = Field(default=1, nullable=False)
    status: str = enum_column(DeadLetterStatus, default=DeadLetterStatus.pending)
    replayed_at: datetime | None = tz_timestamp()


class BackgroundJob(TableBase, table=True):
    """Scheduled work, claimed with ``FOR UPDATE SKIP LOCKED`` by the owning service's worker."""

    __tablename__ = "background_jobs"
    __table_args__ = (
        one_of("service", Service),
        one_of("status", BackgroundJobStatus),
        sa.CheckConstraint("retry_count >= 0 AND max_retries >= 0", name="retries_non_negative"),
        # At most one live instance per dedupe key (a recurring schedule's next run, say).
        sa.Index(
            "uq_background_jobs_dedupe_key_live",
            "dedupe_key",
            unique=True,
            postgresql_where=sa.text("status IN ('pending', 'processing')"),
        ),
        # The claim scan: due pending jobs of one service by priority and time.
        sa.Index(
            "ix_background_jobs_service_due",
            "service",
            "priority",
            "scheduled_for",
            postgresql_where=sa.text("status = 'pending'"),
        ),
        sa.Index("ix_background_jobs_job_type_status", "job_type", "status"),
        # Retention: one service's finished jobs, by when they finished.
        sa.Index(
            "ix_background_jobs_service_finished",
            "service",
            "updated_at",
            postgresql_where=sa.text("status IN ('completed', 'failed')"),
        ),
    )

    service: str = _service()
    job_type: str = Field(sa_type=sa.String(100), nullable=False)
    payload: dict[str, Any] = jsonb()
    status: str = enum_column(BackgroundJobStatus, default=BackgroundJobStatus.pending)
    dedupe_key: str | None = Field(default=None, sa_type=sa.String(200))
    schedule: str | None = Field(
        default=None,
        sa_type=sa.String(100),
        sa_column_kwargs={"comment": "cron expression of a recurring job"},
    )
    priority: int = Field(
        default=100, nullable=False, sa_column_kwargs={"server_default": sa.text("100")}
    )
    max_retries: int = Field(
        default=3, nullable=False, sa_column_kwargs={"server_default": sa.text("3")}
    )
    retry_count: int = Field(
        default=0, nullable=False, sa_column_kwargs={"server_default": sa.text("0")}
    )
    scheduled_for: datetime = Field(
        default=None,
        sa_type=sa.DateTime(timezone=True),
        nullable=False,
        sa_column_kwargs={"server_default": sa.func.now()},
    )
    locked_until: datetime | None = tz_timestamp()
    started_at: datetime | None = tz_timestamp()
    completed_at: datetime | None = tz_timestamp()
    failed_at: datetime | None = tz_timestamp()
    error: str | None = Field(default=None, sa_type=sa.Text)
    result: dict[str, Any] | None = Field(default=None, sa_type=JSONB)


class RateLimit(TableBase, table=True):
    """Per-key request budgets (GCRA): ``tat`` is when the key's budget is next fully spent.

    One row per (service, action, user); a request is allowed while ``tat`` lies no further in
    the future than the burst allows. One conditional upsert decides, so it holds under
    concurrency and across API replicas.
    """

    __tablename__ = "rate_limits"
    __table_args__ = (sa.Index("ix_rate_limits_tat", "tat"),)  # retention: idle keys

    key: str = Field(sa_type=sa.String(200), nullable=False, unique=True)
    tat: datetime = Field(sa_type=sa.DateTime(timezone=True), nullable=False)


class WebhookEvent(TableBase, table=True):
    """Inbound webhooks (identity: Clerk, billing: Stripe): idempotency by ``(source, event_id)``,
    with a lease so a crashed attempt is retried. Rows are tagged by ``source``, not ``service``."""

    __tablename__ = "webhook_events"
    __table_args__ = (
        sa.UniqueConstraint("source", "event_id"),
        one_of("source", WebhookSource),
        one_of("status", WebhookStatus),
        sa.Index("ix_webhook_events_status_created_at", "status", "created_at"),
    )

    event_id: str = Field(sa_type=sa.Text, nullable=False)
    source: str = enum_column(WebhookSource)
    event_type: str = Field(sa_type=sa.String(100), nullable=False)
    status: str = enum_column(WebhookStatus, default=WebhookStatus.processing)
    event_timestamp: datetime | None = tz_timestamp()
    processed_at: datetime | None = tz_timestamp()
    locked_until: datetime | None = tz_timestamp()
    error_message: str | None = Field(default=None, sa_type=sa.Text)
    retry_count: int = Field(
        default=0, nullable=False, sa_column_kwargs={"server_default": sa.text("0")}
    )
    payload: dict[str, Any] | None = Field(default=None, sa_type=JSONB)
    metadata_: dict[str, Any] | None = Field(
        default=None, sa_type=JSONB, sa_column_kwargs={"name": "metadata"}
    )


class EventAttempt(TableBase, table=True):
    """Failed attempts of a consumer at one event, counted only for permanent failures.

    Written in a transaction of its own after a handler failed (the handler's one rolled
    back), so the count survives a worker restart; the dead-letter store takes the event at
    ``EVENTS_MAX_ATTEMPTS``. A later success or the dead letter removes the row. Transient
    failures (a dependency away) are never counted here, however long they last.
    """

    __tablename__ = "event_attempts"
    __table_args__ = (
        sa.UniqueConstraint("consumer", "event_id"),
        one_of("service", Service),
        sa.CheckConstraint("attempts >= 1", name="attempts_positive"),
        sa.Index("ix_event_attempts_service_updated_at", "service", "updated_at"),  # retention
    )

    service: str = _service()
    consumer: str = Field(sa_type=sa.String(100), nullable=False)
    event_id: str = Field(sa_type=sa.String(255), nullable=False)
    attempts: int = Field(default=1, nullable=False)
    last_error: str | None = Field(default=None, sa_type=sa.Text)


class IdempotencyKey(TableBase, table=True):
    """A client's ``Idempotency-Key`` on a POST, and the first response it got (``shared.web.
    idempotency``). Scoped per user: the same key of two users are two rows. A row is
    ``processing`` while its request runs (``locked_until`` is its lease; ``attempt`` fences a
    request whose lease was taken over) and ``completed`` with the response, which is written in
    the same transaction as the request's effects. Pruned after ``RETENTION_IDEMPOTENCY_KEYS_DAYS``.
    """

    __tablename__ = "idempotency_keys"
    __table_args__ = (
        sa.UniqueConstraint("clerk_user_id", "key"),
        one_of("service", Service),
        one_of("status", IdempotencyStatus),
        sa.CheckConstraint("attempt >= 1", name="attempt_positive"),
        sa.Index("ix_idempotency_keys_service_created_at", "service", "created_at"),  # retention
    )

    service: str = _service()
    clerk_user_id: str = Field(sa_type=sa.Text, nullable=False)
    key: str = Field(sa_type=sa.String(255), nullable=False)
    method: str = Field(sa_type=sa.String(10), nullable=False)
    path: str = Field(sa_type=sa.Text, nullable=False)
    request_hash: str = Field(sa_type=sa.String(64), nullable=False)  # sha256 of the body
    status: str = enum_column(IdempotencyStatus, default=IdempotencyStatus.processing)
    attempt: int = Field(
        default=1, nullable=False, sa_column_kwargs={"server_default": sa.text("1")}
    )
    locked_until: datetime = Field(sa_type=sa.DateTime(timezone=True), nullable=False)
    response_status: int | None = Field(default=None, sa_type=sa.SmallInteger)
    response_headers: dict[str, Any] | None = Field(default=None, sa_type=JSONB)
    response_body: bytes | None = Field(default=None, sa_type=sa.LargeBinary)
    completed_at: datetime | None = tz_timestamp()
