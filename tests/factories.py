"""Small row builders for tests: real inserts through the real models."""

import itertools
import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from shared.models import (
    Campaign,
    CreatorList,
    ScrapingJob,
    User,
    UserBilling,
    UserSubscription,
    UserSystemData,
    UserUsage,
)

_seq = itertools.count(1)


def clerk_id() -> str:
    return f"user_{uuid.uuid4().hex[:24]}"


async def make_user(session: AsyncSession, *, children: bool = True, **fields: Any) -> User:
    """A user; with ``children`` also its 1:1 rows (subscription, billing, usage, system data)."""
    n = next(_seq)
    user = User(
        user_id=fields.pop("user_id", clerk_id()),
        email=fields.pop("email", f"u{n}@example.com"),
        **fields,
    )
    session.add(user)
    await session.flush()
    if children:
        session.add_all(
            [
                UserSubscription(user_id=user.id),
                UserBilling(user_id=user.id),
                UserUsage(user_id=user.id),
                UserSystemData(user_id=user.id),
            ]
        )
        await session.flush()
    return user


async def make_campaign(session: AsyncSession, user: User, **fields: Any) -> Campaign:
    campaign = Campaign(
        user_id=user.id, name=fields.pop("name", f"Campaign {next(_seq)}"), **fields
    )
    session.add(campaign)
    await session.flush()
    return campaign


async def make_job(session: AsyncSession, campaign: Campaign, **fields: Any) -> ScrapingJob:
    job = ScrapingJob(
        user_id=campaign.user_id,
        campaign_id=campaign.id,
        platform=fields.pop("platform", "tiktok"),
        keywords=fields.pop("keywords", ["fitness"]),
        **fields,
    )
    session.add(job)
    await session.flush()
    return job


async def make_list(session: AsyncSession, user: User, **fields: Any) -> CreatorList:
    creator_list = CreatorList(
        user_id=user.id, name=fields.pop("name", f"List {next(_seq)}"), **fields
    )
    session.add(creator_list)
    await session.flush()
    return creator_list
