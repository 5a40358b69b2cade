"""Identity's worker: billing's subscription events complete onboarding once; deleted users purge."""

import uuid
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.identity.service import ask_again, purge_deleted_users, record_purged, start_deletion
from shared.events.envelope import Envelope, prefixed
from shared.events.streams import connect
from shared.models import Campaign, Event, InboxEntry, User, UserDeletionStep, UserUsage

from ..factories import make_campaign, make_user
from ..support.services import running_worker
from ..support.wait import eventually


def _subscription_changed(user_pk: uuid.UUID, status: str) -> Envelope:
    return Envelope(
        id=uuid.uuid4(),
        type="billing.subscription.changed",
        version=1,
        source="billing",
        occurred_at=datetime.now(UTC),
        aggregate={"type": "user", "id": str(user_pk)},
        data={"user_id": str(user_pk), "plan": "growth", "status": status},
    )


async def _scalar(engine, stmt):
    async with engine.connect() as conn:
        return (await conn.execute(stmt)).scalar_one()


async def test_active_or_trialing_subscription_completes_onboarding_exactly_once(
    committed, service_settings, nats_url, nats_prefix
):
    async with AsyncSession(committed, expire_on_commit=False) as session, session.begin():
        trialing = await make_user(session, onboarding_step="plan_selected")
        past_due = await make_user(session, onboarding_step="plan_selected")
    async with running_worker("identity", service_settings):
        nc = await connect(nats_url, name="billing-stand-in")
        try:
            js = nc.jetstream()
            subject = prefixed("billing.subscription.changed.v1", nats_prefix)
            first = _subscription_changed(trialing.id, "trialing")
            # The same event three times (distinct Nats-Msg-Ids get past JetStream's dedupe, as a
            # replay would) plus a second, later "active" event for the same user.
            for n in range(3):
                await js.publish(
                    subject, first.to_json(), headers={"Nats-Msg-Id": f"{first.id}-{n}"}
                )
            await js.publish(subject, _subscription_changed(trialing.id, "active").to_json())
            await js.publish(subject, _subscription_changed(past_due.id, "past_due").to_json())

            async def all_handled() -> bool:
                stmt = (
                    sa.select(sa.func.count())
                    .select_from(InboxEntry)
                    .where(InboxEntry.consumer == "identity_billing")
                )
                return await _scalar(committed, stmt) == 3

            await eventually(all_handled)
        finally:
            await nc.close()
    completed = sa.select(Event.data).where(Event.type == "identity.onboarding.step_changed")
    async with committed.connect() as conn:
        steps = dict(
            (
                await conn.execute(
                    sa.select(User.id, User.onboarding_step).where(
                        User.id.in_([trialing.id, past_due.id])
                    )
                )
            ).all()
        )
        rows = (await conn.execute(completed)).scalars().all()
    assert steps == {trialing.id: "completed", past_due.id: "plan_selected"}
    assert [(r["previous_step"], r["step"]) for r in rows] == [("plan_selected", "completed")]


async def _step_applied(engine, user_pk: uuid.UUID) -> dict[str, bool]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            sa.select(UserDeletionStep.service, UserDeletionStep.applied_at.is_not(None)).where(
                UserDeletionStep.user_id == user_pk
            )
        )
        return dict(rows.all())


async def test_users_are_purged_only_once_every_service_acknowledged_whatever_their_age(
    committed,
):
    async with AsyncSession(committed, expire_on_commit=False) as session, session.begin():
        acked = await make_user(session)
        await make_campaign(session, acked)
        waiting = await make_user(session)
        ancient = await make_user(session)
        alive = await make_user(session)
        for user in (acked, waiting, ancient):
            await start_deletion(session, user.user_id)
        # A deletion started a month ago that billing never acknowledged: no deadline purges it.
        await session.execute(
            sa.update(User)
            .where(User.id == ancient.id)
            .values(deleted_at=datetime.now(UTC) - timedelta(days=30))
        )
        for service in ("billing", "campaign", "scraping"):
            assert await record_purged(session, acked.id, service)
        for service in ("campaign", "scraping"):
            assert await record_purged(session, waiting.id, service)
            assert await record_purged(session, ancient.id, service)
        # Every service's inbox holds waiting's deletion event (a stale "applied" signal the
        # purge must not trust: only the acknowledgements count).
        waiting_event = (
            await session.execute(
                sa.select(Event.id).where(
                    Event.type == "identity.user.deleted", Event.aggregate_id == str(waiting.id)
                )
            )
        ).scalar_one()
        for service in ("billing", "campaign", "scraping"):
            session.add(
                InboxEntry(
                    service=service, consumer=f"{service}_identity", event_id=str(waiting_event)
                )
            )
        # A repeated acknowledgement changes nothing.
        assert not await record_purged(session, acked.id, "billing")
    # Retention prunes every inbox and every published event: the acknowledgements stand.
    async with committed.begin() as conn:
        await conn.execute(sa.delete(InboxEntry))
        await conn.execute(sa.delete(Event))
    async with AsyncSession(committed) as session, session.begin():
        purged = await purge_deleted_users(session)
    assert purged == [acked.user_id]
    async with committed.connect() as conn:
        left = set((await conn.execute(sa.select(User.user_id))).scalars())
        campaigns = (
            await conn.execute(sa.select(sa.func.count()).select_from(Campaign))
        ).scalar_one()
        usage = (
            await conn.execute(
                sa.select(sa.func.count())
                .select_from(UserUsage)
                .where(UserUsage.user_id == acked.id)
            )
        ).scalar_one()
    assert left == {waiting.user_id, ancient.user_id, alive.user_id}
    assert (campaigns, usage) == (0, 0)  # the FK cascade backstop took the rest
    assert await _step_applied(committed, waiting.id) == {
        "billing": False, "campaign": True, "scraping": True,
    }  # fmt: skip
    # A late acknowledgement for a user already gone is a no-op, not an error.
    async with AsyncSession(committed) as session, session.begin():
        assert not await record_purged(session, acked.id, "scraping")
        await record_purged(session, waiting.id, "billing")
        assert await purge_deleted_users(session) == [waiting.user_id]


async def test_a_deletion_left_pending_is_announced_again_to_every_service(committed):
    async with AsyncSession(committed, expire_on_commit=False) as session, session.begin():
        stuck = await make_user(session)
        fresh = await make_user(session)
        for user in (stuck, fresh):
            await start_deletion(session, user.user_id)
        await record_purged(session, stuck.id, "campaign")
        await session.execute(
            sa.update(UserDeletionStep)
            .where(UserDeletionStep.user_id == stuck.id)
            .values(requested_at=datetime.now(UTC) - timedelta(hours=25))
        )
    async with AsyncSession(committed) as session, session.begin():
        assert await ask_again(session) == [stuck.user_id]
    async with AsyncSession(committed) as session, session.begin():
        assert await ask_again(session) == []  # asked just now: not again before the interval
    deletions = sa.select(Event.aggregate_id).where(Event.type == "identity.user.deleted")
    async with committed.connect() as conn:
        announced = list((await conn.execute(deletions)).scalars())
        asked = dict(
            (
                await conn.execute(
                    sa.select(UserDeletionStep.service, UserDeletionStep.requested_at).where(
                        UserDeletionStep.user_id == stuck.id
                    )
                )
            ).all()
        )
    assert sorted(announced) == sorted([str(stuck.id), str(stuck.id), str(fresh.id)])
    recent = datetime.now(UTC) - timedelta(minutes=5)
    assert asked["billing"] > recent and asked["scraping"] > recent
    assert asked["campaign"] < recent  # applied steps are not asked again


async def test_the_identity_worker_records_each_services_acknowledgement(
    committed, service_settings, nats_url, nats_prefix
):
    async with AsyncSession(committed, expire_on_commit=False) as session, session.begin():
        user = await make_user(session)
        await start_deletion(session, user.user_id)
    async with running_worker("identity", service_settings):
        nc = await connect(nats_url, name="purging-services-stand-in")
        try:
            js = nc.jetstream()
            for service in ("billing", "campaign", "scraping"):
                envelope = Envelope(
                    id=uuid.uuid4(),
                    type=f"{service}.user.purged",
                    version=1,
                    source=service,
                    occurred_at=datetime.now(UTC),
                    aggregate={"type": "user", "id": str(user.id)},
                    data={"user_id": str(user.id), "clerk_user_id": user.user_id},
                )
                await js.publish(prefixed(envelope.subject, nats_prefix), envelope.to_json())

            async def acknowledged() -> bool:
                return set((await _step_applied(committed, user.id)).values()) == {True}

            await eventually(acknowledged)
        finally:
            await nc.close()
    async with AsyncSession(committed) as session, session.begin():
        assert await purge_deleted_users(session) == [user.user_id]
