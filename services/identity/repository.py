"""Every SQL statement of the identity service (flushes only; the caller owns the transaction)."""

import uuid
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession

from shared.models import (
    Event,
    LoggingConfiguration,
    PendingEvent,
    SystemConfiguration,
    User,
    UserBilling,
    UserDeletionStep,
    UserSubscription,
    UserSystemData,
    UserUsage,
    WebhookEvent,
)
from shared.models.enums import WebhookSource, WebhookStatus
from shared.queries.pagination import Page, paginate

users = User.__table__
system_data = UserSystemData.__table__
subscriptions = UserSubscription.__table__
billing = UserBilling.__table__
usage = UserUsage.__table__
configs = SystemConfiguration.__table__
levels = LoggingConfiguration.__table__
webhooks = WebhookEvent.__table__
events = Event.__table__
pending_events = PendingEvent.__table__
steps = UserDeletionStep.__table__

CHILDREN = {
    "user_subscriptions": subscriptions,
    "user_billing": billing,
    "user_usage": usage,
    "user_system_data": system_data,
}
USER_COLUMNS = (
    users.c.id,
    users.c.user_id,
    users.c.email,
    users.c.full_name,
    users.c.onboarding_step,
    users.c.deleted_at,
    users.c.created_at,
)


def escape_like(value: str, escape: str = "\\") -> str:
    """``value`` with LIKE wildcards (and the escape character) made literal."""
    return value.replace(escape, escape * 2).replace("%", escape + "%").replace("_", escape + "_")


class IdentityRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def _exec(self, stmt: sa.Executable, params: dict[str, Any] | None = None):
        return await self.session.execute(stmt, params or {})

    # --- users ---------------------------------------------------------------------------------

    async def insert_user(
        self, clerk_user_id: str, *, email: str | None, full_name: str | None
    ) -> uuid.UUID | None:
        """Insert the user unless the Clerk id exists; the new id, or None if it already did.

        Race: two first requests (or /me and the webhook) insert at once. The second INSERT waits
        on the unique index until the first commits and then inserts nothing, so exactly one
        caller gets an id back and emits ``identity.user.created``.
        """
        stmt = (
            pg_insert(users)
            .values(user_id=clerk_user_id, email=email, full_name=full_name)
            .on_conflict_do_nothing(index_elements=[users.c.user_id])
            .returning(users.c.id)
        )
        return (await self._exec(stmt)).scalar_one_or_none()

    async def insert_system_data(
        self, user_pk: uuid.UUID, *, event: str | None = None, at: datetime | None = None
    ) -> None:
        stmt = (
            pg_insert(system_data)
            .values(user_id=user_pk, last_webhook_event=event, last_webhook_timestamp=at)
            .on_conflict_do_nothing(index_elements=[system_data.c.user_id])
        )
        await self._exec(stmt)

    async def touch_webhook(self, user_pk: uuid.UUID, event: str, at: datetime) -> None:
        """Record the last Clerk webhook on the user's system data (creating the row if missing)."""
        stmt = pg_insert(system_data).values(
            user_id=user_pk, last_webhook_event=event, last_webhook_timestamp=at
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[system_data.c.user_id],
            set_={
                "last_webhook_event": stmt.excluded.last_webhook_event,
                "last_webhook_timestamp": stmt.excluded.last_webhook_timestamp,
            },
        )
        await self._exec(stmt)

    async def lock_user(self, clerk_user_id: str) -> Row | None:
        stmt = sa.select(*USER_COLUMNS).where(users.c.user_id == clerk_user_id).with_for_update()
        return (await self._exec(stmt)).first()

    async def lock_user_by_pk(self, user_pk: uuid.UUID) -> Row | None:
        stmt = sa.select(*USER_COLUMNS).where(users.c.id == user_pk).with_for_update()
        return (await self._exec(stmt)).first()

    async def update_user(self, user_pk: uuid.UUID, **values: Any) -> None:
        await self._exec(sa.update(users).where(users.c.id == user_pk).values(**values))

    async def set_admin(self, user_pk: uuid.UUID, is_admin: bool) -> None:
        await self.update_user(user_pk, is_admin=is_admin)

    async def mark_deleted(self, clerk_user_id: str) -> uuid.UUID | None:
        """Start deletion (once): the user's id if this call marked it, None otherwise."""
        stmt = (
            sa.update(users)
            .where(users.c.user_id == clerk_user_id, users.c.deleted_at.is_(None))
            .values(deleted_at=sa.func.now())
            .returning(users.c.id)
        )
        return (await self._exec(stmt)).scalar_one_or_none()

    # --- the deletion saga --------------------------------------------------------------------

    async def insert_deletion_steps(self, user_pk: uuid.UUID, services: tuple[str, ...]) -> None:
        """One pending step per purging service (none twice, however often deletion starts)."""
        stmt = (
            pg_insert(steps)
            .values([{"user_id": user_pk, "service": service} for service in services])
            .on_conflict_do_nothing(index_elements=[steps.c.user_id, steps.c.service])
        )
        await self._exec(stmt)

    async def mark_step_applied(self, user_pk: uuid.UUID, service: str) -> bool:
        """Record that ``service`` purged the user; False if there was no pending step (applied
        before, or the user is already gone: a late or repeated acknowledgement)."""
        stmt = (
            sa.update(steps)
            .where(
                steps.c.user_id == user_pk,
                steps.c.service == service,
                steps.c.applied_at.is_(None),
            )
            .values(applied_at=sa.func.now())
            .returning(steps.c.id)
        )
        return (await self._exec(stmt)).first() is not None

    async def purge_deleted(self, services: tuple[str, ...]) -> list[Row]:
        """Delete the users whose every purging service has acknowledged the deletion.

        Nothing else lets a row go: no deadline, and no reading of inboxes (which are pruned).
        A user with a missing or pending step stays, whatever its age. The foreign keys
        cascade, so what a service left behind (campaigns swept late) goes with the row.
        """
        applied = (
            sa.select(sa.func.count())
            .where(
                steps.c.user_id == users.c.id,
                steps.c.service.in_(services),
                steps.c.applied_at.is_not(None),
            )
            .scalar_subquery()
        )
        stmt = (
            sa.delete(users)
            .where(users.c.deleted_at.is_not(None), applied >= len(services))
            .returning(users.c.id, users.c.user_id)
        )
        return list((await self._exec(stmt)).all())

    async def ask_again(self, asked_before: timedelta, limit: int = 500) -> list[Row]:
        """Pending steps last asked longer than ``asked_before`` ago are asked again now (their
        ``requested_at`` moves); the users concerned, ``(id, user_id)``, each once. Rows other
        workers hold are skipped, so two workers never re-announce the same user."""
        due = (
            sa.select(steps.c.id)
            .where(
                steps.c.applied_at.is_(None),
                steps.c.requested_at < sa.func.now() - asked_before,
            )
            .order_by(steps.c.requested_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
            .cte("due")
        )
        asked = (
            sa.update(steps)
            .where(steps.c.id.in_(sa.select(due.c.id)))
            .values(requested_at=sa.func.now())
            .returning(steps.c.user_id)
            .cte("asked")
        )
        stmt = (
            sa.select(users.c.id, users.c.user_id)
            .where(users.c.id.in_(sa.select(asked.c.user_id)), users.c.deleted_at.is_not(None))
            .order_by(users.c.id)
        )
        return list((await self._exec(stmt)).all())

    async def deletion_steps(self, user_pk: uuid.UUID) -> list[Row]:
        stmt = (
            sa.select(steps.c.service, steps.c.created_at, steps.c.requested_at, steps.c.applied_at)
            .where(steps.c.user_id == user_pk)
            .order_by(steps.c.service)
        )
        return list((await self._exec(stmt)).all())

    # --- webhooks ------------------------------------------------------------------------------

    async def claim_webhook(
        self, event_id: str, event_type: str, at: datetime | None, metadata: dict[str, Any]
    ) -> bool:
        """Record a Clerk delivery; False if this svix-id was already recorded.

        Written as ``completed`` in the same transaction as its effects: a concurrent duplicate
        blocks on UNIQUE(source, event_id) until this commits (then it is skipped) or rolls back
        (then it applies), so a delivery has exactly one effect. No payload is kept (it is PII).
        """
        stmt = (
            pg_insert(webhooks)
            .values(
                {
                    "event_id": event_id,
                    "source": WebhookSource.clerk.value,
                    "event_type": event_type[:100],
                    "status": WebhookStatus.completed.value,
                    "event_timestamp": at,
                    "processed_at": sa.func.now(),
                    "metadata": metadata,  # the column (the model attribute is metadata_)
                }
            )
            .on_conflict_do_nothing(index_elements=[webhooks.c.source, webhooks.c.event_id])
            .returning(webhooks.c.id)
        )
        return (await self._exec(stmt)).first() is not None

    # --- admin reads ---------------------------------------------------------------------------

    async def search_users(
        self, email: str | None, page: int, page_size: int
    ) -> Page[dict[str, Any]]:
        stmt = sa.select(
            users.c.id,
            users.c.user_id,
            users.c.email,
            users.c.full_name,
            users.c.onboarding_step,
            users.c.is_admin,
            subscriptions.c.current_plan,
            sa.func.coalesce(subscriptions.c.subscription_status, "none").label(
                "subscription_status"
            ),
            users.c.created_at,
            users.c.deleted_at,
        ).select_from(users.outerjoin(subscriptions, subscriptions.c.user_id == users.c.id))
        if email:
            # A prefix on lower(email): the text_pattern_ops index ix_users_email_lower serves it.
            pattern = escape_like(email.strip().lower()) + "%"
            stmt = stmt.where(sa.func.lower(users.c.email).like(pattern, escape="\\"))
        found = await paginate(
            self.session,
            stmt,
            page=page,
            page_size=page_size,
            order_by=(users.c.created_at.desc(), users.c.id.desc()),
        )
        names = [c.name for c in stmt.selected_columns]
        return Page(
            items=[dict(zip(names, row, strict=True)) for row in found.items],
            total=found.total,
            page=found.page,
            page_size=found.page_size,
        )

    async def recent_events(self, user_pk: uuid.UUID, limit: int = 50) -> list[Row]:
        stmt = (
            sa.select(
                events.c.id,
                events.c.service,
                events.c.type,
                events.c.version,
                events.c.aggregate_type,
                events.c.aggregate_id,
                events.c.occurred_at,
                # Published once its pending row is gone (no publish time is kept per event).
                ~sa.exists().where(pending_events.c.id == events.c.id).label("published"),
                events.c.data,
            )
            .where(events.c.user_id == user_pk)
            .order_by(events.c.occurred_at.desc(), events.c.seq.desc())
            .limit(limit)
        )
        return list((await self._exec(stmt)).all())

    async def row_counts(self, user_pk: uuid.UUID, tables: list[sa.Table]) -> dict[str, int]:
        """Rows per table for one user, every table in ONE statement (scalar subqueries)."""
        if not tables:
            return {}
        stmt = sa.select(
            *(
                sa.select(sa.func.count())
                .select_from(t)
                .where(t.c.user_id == user_pk)
                .scalar_subquery()
                .label(t.name)
                for t in tables
            )
        )
        row = (await self._exec(stmt)).mappings().one()
        return {name: int(count) for name, count in row.items()}

    # --- runtime configuration -----------------------------------------------------------------

    async def get_config(self, category: str, key: str, *, lock: bool = False) -> Row | None:
        stmt = sa.select(configs).where(configs.c.category == category, configs.c.key == key)
        if lock:
            stmt = stmt.with_for_update()
        return (await self._exec(stmt)).first()

    async def insert_config(self, **values: Any) -> Row | None:
        """Insert a new key; None if a concurrent request created it first."""
        stmt = (
            pg_insert(configs)
            .values(**values)
            .on_conflict_do_nothing(index_elements=[configs.c.category, configs.c.key])
            .returning(configs)
        )
        return (await self._exec(stmt)).first()

    async def update_config(self, category: str, key: str, **values: Any) -> Row:
        stmt = (
            sa.update(configs)
            .where(configs.c.category == category, configs.c.key == key)
            .values(**values, updated_at=sa.func.now())
            .returning(configs)
        )
        return (await self._exec(stmt)).one()

    async def get_level(self, service: str, logger: str, *, lock: bool = False) -> Row | None:
        stmt = sa.select(levels).where(levels.c.service == service, levels.c.logger == logger)
        if lock:
            stmt = stmt.with_for_update()
        return (await self._exec(stmt)).first()

    async def upsert_level(self, service: str, logger: str, level: str) -> Row:
        stmt = pg_insert(levels).values(service=service, logger=logger, level=level)
        stmt = stmt.on_conflict_do_update(
            index_elements=[levels.c.service, levels.c.logger],
            set_={"level": stmt.excluded.level, "updated_at": sa.func.now()},
        ).returning(levels)
        return (await self._exec(stmt)).one()
