"""The campaign worker: purge on ``identity.user.deleted.v1`` (delivered over real NATS), and the
durable confirm of a campaign reservation against the real billing worker."""

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.campaign.service import CONFIRM_JOB, RESERVATION_TTL_SECONDS, reservation_key
from shared.events.outbox import record_event
from shared.events.relay import Relay
from shared.events.streams import connect
from shared.models import Campaign, CreatorList, ListItem, UsageReservation
from shared.models.enums import UsageResource
from shared.quota import QuotaClient
from shared.scheduler import schedule_job

from ..factories import make_campaign, make_job, make_list
from ..support.services import running_worker
from ..support.wait import eventually
from .conftest import scalar


async def count(engine, model, *where) -> int:
    return await scalar(engine, sa.select(sa.func.count()).select_from(model).where(*where))


async def test_user_deletion_purges_lists_and_campaigns_once_scraping_let_go(
    make_owner, committed, service_settings, nats_url, nats_prefix
):
    gone, kept = await make_owner(), await make_owner()
    async with AsyncSession(committed, expire_on_commit=False) as session:
        for owner in (gone, kept):
            await make_campaign(session, owner.user)
            creator_list = await make_list(session, owner.user)
        busy = await make_campaign(session, gone.user)
        await make_job(session, busy)  # scraping has not purged this one yet
        await session.commit()
    async with committed.begin() as conn:
        await conn.execute(
            sa.text(
                "WITH p AS (INSERT INTO creator_profiles (platform, external_id, handle)"
                " VALUES ('tiktok', 'purge-1', 'h') RETURNING id)"
                " INSERT INTO list_items (list_id, creator_id) SELECT :list, id FROM p"
            ),
            {"list": creator_list.id},  # kept's list
        )

    async with running_worker("campaign", service_settings):
        # Identity announces the deletion (its outbox row, relayed to JetStream).
        async with AsyncSession(committed) as session, session.begin():
            await record_event(
                session,
                service="identity",
                type="identity.user.deleted",
                aggregate_type="user",
                aggregate_id=gone.user.id,
                user_id=gone.user.id,
                data={"user_id": gone.user.id, "clerk_user_id": gone.user.user_id},
            )
        nc = await connect(nats_url, name="test-identity-relay")
        try:
            await Relay(committed, nc.jetstream(), "identity", prefix=nats_prefix).drain()
        finally:
            await nc.close()

        async def purged() -> bool:
            return await count(committed, CreatorList, CreatorList.user_id == gone.user.id) == 0

        await eventually(purged)
    assert await count(committed, Campaign, Campaign.user_id == gone.user.id) == 1
    async with committed.connect() as conn:
        leftover = (
            await conn.execute(
                sa.select(Campaign.id, Campaign.deleted_at).where(Campaign.user_id == gone.user.id)
            )
        ).one()
    assert leftover.id == busy.id and leftover.deleted_at is not None  # hidden, swept later
    # The other user's data is untouched.
    assert await count(committed, Campaign, Campaign.user_id == kept.user.id) == 1
    assert await count(committed, CreatorList, CreatorList.user_id == kept.user.id) == 1
    assert await count(committed, ListItem) == 1


async def test_an_unconfirmed_reservation_is_confirmed_by_the_worker(
    make_owner, committed, service_settings, nats_url, nats_prefix
):
    """The API died between commit and confirm: the job committed with the campaign confirms it."""
    owner = await make_owner(campaigns_limit=2)
    async with running_worker("billing", service_settings):
        nc = await connect(nats_url, name="test-reserve")
        try:
            reply = await QuotaClient(nc, nats_prefix).reserve(
                owner.user.id,
                UsageResource.campaigns,
                1,
                key=reservation_key(owner.user.id),
                ttl_seconds=RESERVATION_TTL_SECONDS,
            )
        finally:
            await nc.close()
        assert reply.allowed
        async with committed.begin() as conn:
            await schedule_job(
                conn,
                "campaign",
                CONFIRM_JOB,
                {"reservation_id": str(reply.reservation_id), "used_amount": 1},
                run_at=datetime.now(UTC),
            )
        async with running_worker("campaign", service_settings):

            async def confirmed() -> bool:
                status = await scalar(committed, sa.select(UsageReservation.status))
                return status == "confirmed"

            await eventually(confirmed)
