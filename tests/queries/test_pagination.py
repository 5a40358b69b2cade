"""Page listings: newest first, a correct total (also past the end), validated bounds.

Exercised through the campaigns listing, the hottest production user of the helper."""

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from services.campaign.repository import CampaignRepository
from shared import sqltrace
from shared.models import Campaign
from shared.queries.pagination import MAX_PAGE, MAX_PAGE_SIZE, InvalidPage, newest_first, paginate

from ..factories import make_campaign, make_user
from ..support.sql import Executed, analyzed_plan, touched

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


@pytest.mark.parametrize("status", [None, "active"])
async def test_every_page_is_in_order_whichever_end_it_is_walked_from(session, status):
    """Pages past the middle are found from the listing's other end: every page of every size,
    and one past the end, must still be the newest-first order (ties broken by id)."""
    user = await make_user(session)
    for i in range(14):
        # Three campaigns share each timestamp, so the id alone orders them.
        fields = {"created_at": T0 + timedelta(hours=i // 3), "status": ("active", "draft")[i % 2]}
        await make_campaign(session, user, **fields)
    await make_campaign(session, user, status="active", deleted_at=T0)
    await user_with_campaigns(session, 3, status="active")  # someone else's
    live = (
        await session.execute(
            sa.select(Campaign).where(Campaign.user_id == user.id, Campaign.deleted_at.is_(None))
        )
    ).scalars()
    expected = sorted(
        (c for c in live if status is None or c.status == status),
        key=lambda c: (c.created_at, c.id),
        reverse=True,
    )
    repository = CampaignRepository(session)
    for size in (1, 2, 3, 5, len(expected), 20):
        pages = [
            await repository.page(user.id, page=number, page_size=size, status=status)
            for number in range(1, -(-len(expected) // size) + 2)
        ]
        assert [c["id"] for p in pages for c in p.items] == [c.id for c in expected], size
        assert {p.total for p in pages} == {len(expected)}
        assert [len(p.items) for p in pages[:-1]] == [
            min(size, len(expected) - i) for i in range(0, len(expected), size)
        ]
        assert pages[-1].items == []


async def test_a_page_reads_index_entries_from_the_nearer_end(session, engine):
    """OFFSET skips index entries one by one, so a page past the middle is found from the
    other end: the last page reads about a page of entries, not the whole listing."""
    user = await make_user(session)
    many, size = 2_000, 20
    session.add_all(
        Campaign(user_id=user.id, name=f"c{i}", created_at=T0 + timedelta(minutes=i))
        for i in range(many)
    )
    await session.flush()
    # Statistics as a live database has them (else a 2,000-row table is read whole).
    await session.execute(sa.text("ANALYZE campaigns"))
    reads = {}
    for number in (1, many // size // 2, many // size // 2 + 1, many // size):
        executed = Executed()
        with sqltrace.recording(engine, executed):
            page = await CampaignRepository(session).page(user.id, page=number, page_size=size)
        assert page.items[0]["name"] == f"c{many - 1 - (number - 1) * size}"
        plan = await analyzed_plan(session, *executed.matching("FROM campaigns"))
        reads[number] = touched(plan, "campaigns")
    # The page's keys and a probe for each of its rows, plus the entries skipped: at most
    # half the listing.
    assert reads[1] <= 3 * size
    assert reads[many // size] <= 3 * size
    assert max(reads.values()) <= many // 2 + 3 * size


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
