"""Page listings: newest first, a correct total (also past the end), validated bounds.

Exercised through the campaigns listing, the hottest production user of the helper."""

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from services.campaign.repository import CampaignRepository
from shared.models import Campaign
from shared.queries.pagination import MAX_PAGE, MAX_PAGE_SIZE, InvalidPage, newest_first, paginate

from ..factories import make_campaign, make_user

T0 = datetime(2026, 1, 1, tzinfo=UTC)


async def user_with_campaigns(session, n: int, **fields):
    user = await make_user(session)
    campaigns = [
        await make_campaign(session, user, created_at=T0 + timedelta(hours=i), **fields)
        for i in range(n)
    ]
    return user, campaigns


async def test_pages_are_newest_first_with_the_total(session, statements):
    user, campaigns = await user_with_campaigns(session, 5)
    newest = list(reversed(campaigns))

    with statements.counting():
        first = await CampaignRepository(session).page(user.id, page=1, page_size=2)
    assert statements.count == 1  # items and total from one statement
    last = await CampaignRepository(session).page(user.id, page=3, page_size=2)

    assert [c["id"] for c in first.items] == [c.id for c in newest[:2]]
    assert (first.total, first.page, first.page_size, first.pages) == (5, 1, 2, 3)
    assert [c["id"] for c in last.items] == [newest[4].id]
    assert last.total == 5


async def test_a_page_past_the_end_is_empty_but_keeps_the_total(session):
    user, _ = await user_with_campaigns(session, 3)
    page = await CampaignRepository(session).page(user.id, page=7, page_size=2)
    assert (page.items, page.total, page.page) == ([], 3, 7)


async def test_no_rows_is_an_empty_first_page(session, statements):
    user = await make_user(session)
    with statements.counting():
        page = await CampaignRepository(session).page(user.id, page=1, page_size=20)
    assert (page.items, page.total, page.pages) == ([], 0, 0)
    assert statements.count == 1


async def test_equal_timestamps_still_page_without_overlap(session):
    user = await make_user(session)
    same = [await make_campaign(session, user, created_at=T0) for _ in range(5)]
    seen = []
    for number in (1, 2, 3):
        seen += [
            c["id"]
            for c in (
                await CampaignRepository(session).page(user.id, page=number, page_size=2)
            ).items
        ]
    assert sorted(seen) == sorted(c.id for c in same)


async def test_listing_filters_by_status_owner_and_deletion(session):
    user, campaigns = await user_with_campaigns(session, 2, status="active")
    draft = await make_campaign(session, user, status="draft")
    await make_campaign(session, user, status="active", deleted_at=T0)
    await user_with_campaigns(session, 2, status="active")  # someone else's

    active = await CampaignRepository(session).page(user.id, page=1, page_size=10, status="active")
    everything = await CampaignRepository(session).page(user.id, page=1, page_size=10)

    assert {c["id"] for c in active.items} == {c.id for c in campaigns}
    assert active.total == 2
    assert {c["id"] for c in everything.items} == {draft.id, *(c.id for c in campaigns)}


async def test_a_projection_pages_as_tuples(session):
    user, campaigns = await user_with_campaigns(session, 3)
    stmt = sa.select(Campaign.id, Campaign.name).where(Campaign.user_id == user.id)
    page = await paginate(session, stmt, page=1, page_size=2, order_by=newest_first(Campaign))
    assert page.items == [(c.id, c.name) for c in reversed(campaigns[1:])]
    assert page.total == 3


@pytest.mark.parametrize(
    ("page", "page_size"),
    [
        (0, 10),
        (-1, 10),
        (MAX_PAGE + 1, 10),
        (2**63, 10),
        (1, 0),
        (1, MAX_PAGE_SIZE + 1),
        (1, -5),
        ("2", 10),
    ],
)
async def test_invalid_page_arguments_are_rejected(session, page, page_size):
    user = await make_user(session)
    with pytest.raises(InvalidPage) as info:
        await CampaignRepository(session).page(user.id, page=page, page_size=page_size)
    assert isinstance(info.value, ValueError)
    assert ("page_size" if page_size != 10 else "page") in str(info.value)


async def test_largest_page_size_is_allowed(session):
    user, _ = await user_with_campaigns(session, 1)
    page = await CampaignRepository(session).page(user.id, page=1, page_size=MAX_PAGE_SIZE)
    assert page.total == 1
