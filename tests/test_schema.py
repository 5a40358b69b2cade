"""The schema makes the data bugs a user-data platform is prone to impossible, in the database:
orphans, duplicate 1:1 rows, values that do not fit their columns, drifting stored states."""

import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, IntegrityError

from shared.models import (
    Campaign,
    ListItem,
    ScrapingJob,
    ScrapingJobCreator,
    ScrapingResult,
    User,
    UserBilling,
    UserSubscription,
    UserSystemData,
    UserUsage,
    metadata,
)
from shared.models.base import TableBase
from shared.models.scraping import RESULT_BATCH_MAX

from .factories import clerk_id, make_campaign, make_job, make_list, make_user


async def rejected(session, statement, params=None, *, constraint: str | None = None):
    """Run ``statement`` in a savepoint; assert Postgres rejects it (naming ``constraint``)."""
    with pytest.raises((IntegrityError, DBAPIError)) as info:
        async with session.begin_nested():
            await session.execute(
                sa.text(statement) if isinstance(statement, str) else statement, params or {}
            )
    if constraint:
        assert constraint in str(info.value), str(info.value)
    return info.value


ONE_TO_ONE_CHILDREN = [UserSubscription, UserBilling, UserUsage, UserSystemData]


@pytest.mark.parametrize("model", ONE_TO_ONE_CHILDREN, ids=lambda m: m.__tablename__)
async def test_second_child_row_for_a_user_is_rejected(session, model):
    user = await make_user(session)
    table = model.__tablename__
    await rejected(
        session,
        f"INSERT INTO {table} (user_id) VALUES (:u)",
        {"u": user.id},
        constraint=f"uq_{table}_user_id",
    )


async def test_clerk_id_is_unique(session):
    user = await make_user(session, children=False)
    await rejected(
        session,
        "INSERT INTO users (user_id) VALUES (:c)",
        {"c": user.user_id},
        constraint="uq_users_user_id",
    )


async def test_stripe_customer_and_subscription_ids_are_unique(session):
    a, b = await make_user(session), await make_user(session)
    await session.execute(
        sa.update(UserBilling)
        .where(UserBilling.user_id == a.id)
        .values(stripe_customer_id="cus_1", stripe_subscription_id="sub_1")
    )
    await rejected(
        session,
        "UPDATE user_billing SET stripe_customer_id = 'cus_1' WHERE user_id = :u",
        {"u": b.id},
        constraint="uq_user_billing_stripe_customer_id",
    )
    await rejected(
        session,
        "UPDATE user_billing SET stripe_subscription_id = 'sub_1' WHERE user_id = :u",
        {"u": b.id},
        constraint="uq_user_billing_stripe_subscription_id",
    )


async def test_an_over_long_sync_status_is_rejected(session):
    # e.g. 'webhook_checkout.session.completed', 34 characters, into a varchar(20).
    user = await make_user(session)
    await rejected(
        session,
        "UPDATE user_subscriptions SET billing_sync_status = 'webhook_checkout.session.completed' WHERE user_id = :u",
        {"u": user.id},
    )


@pytest.mark.parametrize(
    ("table", "column", "value"),
    [
        ("users", "onboarding_step", "step-1"),
        ("user_subscriptions", "subscription_status", "paused"),
        ("user_subscriptions", "billing_interval", "week"),
        ("user_subscriptions", "billing_sync_status", "bogus"),
    ],
)
async def test_values_outside_an_enumeration_are_rejected(session, table, column, value):
    user = await make_user(session)
    key = "id" if table == "users" else "user_id"
    await rejected(
        session,
        f"UPDATE {table} SET {column} = :v WHERE {key} = :u",
        {"v": value, "u": user.id},
        constraint=f"ck_{table}_{column}_allowed",
    )


async def test_unknown_plan_is_rejected_by_foreign_key(session):
    user = await make_user(session)
    await rejected(
        session,
        "UPDATE user_subscriptions SET current_plan = 'free' WHERE user_id = :u",
        {"u": user.id},
        constraint="fk_user_subscriptions_current_plan_subscription_plans",
    )


async def test_usage_counters_cannot_go_negative(session):
    user = await make_user(session)
    await rejected(
        session,
        "UPDATE user_usage SET usage_campaigns_current = usage_campaigns_current - 1 WHERE user_id = :u",
        {"u": user.id},
        constraint="ck_user_usage_counters_non_negative",
    )


async def test_trial_status_is_not_a_stored_column():
    assert "trial_status" not in metadata.tables["user_subscriptions"].c


async def test_campaign_for_an_unknown_user_is_rejected(session):
    # Campaigns keyed by a Clerk id without a foreign key could outlive their user.
    await rejected(
        session,
        "INSERT INTO campaigns (user_id, name) VALUES (:u, 'x')",
        {"u": uuid.uuid4()},
        constraint="fk_campaigns_user_id_users",
    )


async def test_deleting_a_user_leaves_no_orphans(session):
    user = await make_user(session)
    campaign = await make_campaign(session, user)
    job = await make_job(session, campaign)
    session.add(
        ScrapingResult(
            job_id=job.id, batch_no=0, first_ordinal=0, creator_count=1, creators=[{"u": 1}]
        )
    )
    session.add(
        ScrapingJobCreator(
            job_id=job.id, platform="tiktok", creator_key="someone", ordinal=0, creator={"u": 1}
        )
    )
    await make_list(session, user)
    await session.flush()
    await session.execute(sa.delete(User).where(User.id == user.id))
    for table in metadata.sorted_tables:
        if "user_id" in table.c and table.name not in {"users", "events"}:
            left = await session.scalar(
                sa.select(sa.func.count()).select_from(table).where(table.c.user_id == user.id)
            )
            assert left == 0, f"{table.name} kept rows of a deleted user"
    for table in ("scraping_results", "scraping_job_creators"):
        left = await session.scalar(
            sa.text(f"SELECT count(*) FROM {table} WHERE job_id = :j"), {"j": job.id}
        )
        assert left == 0


async def test_creator_dedupe_within_a_job_is_enforced(session):
    user = await make_user(session)
    job = await make_job(session, await make_campaign(session, user))
    session.add(
        ScrapingJobCreator(
            job_id=job.id, platform="tiktok", creator_key="alice", ordinal=0, creator={}
        )
    )
    await session.flush()
    insert = (
        "INSERT INTO scraping_job_creators (job_id, platform, creator_key, ordinal, creator)"
        " VALUES (:j, 'tiktok', :key, :ordinal, '{}')"
    )
    await rejected(
        session,
        insert,
        {"j": job.id, "key": "alice", "ordinal": 1},
        constraint="uq_scraping_job_creators_job_id_platform_creator_key",
    )
    # Keys are stored normalised, so 'Alice ' cannot sneak past the unique constraint.
    await rejected(
        session,
        insert,
        {"j": job.id, "key": "Alice ", "ordinal": 1},
        constraint="ck_scraping_job_creators_creator_key_normalised",
    )
    # One creator per position of the job: discovery order is a total order.
    await rejected(
        session,
        insert,
        {"j": job.id, "key": "bob", "ordinal": 0},
        constraint="uq_scraping_job_creators_job_id_ordinal",
    )


async def test_filter_columns_are_generated_from_the_stored_creator(session):
    user = await make_user(session)
    job = await make_job(session, await make_campaign(session, user))
    creators = [
        {"username": "Ann", "display_name": "Ann B", "bio": "Yoga Teacher", "followers": 1200,
         "verified": True, "emails": ["a@x.io"]},
        {"username": "cy", "followers": None, "verified": "yes", "emails": "a@x.io"},
        {},
    ]  # fmt: skip
    for ordinal, creator in enumerate(creators):
        session.add(
            ScrapingJobCreator(
                job_id=job.id, platform="tiktok", creator_key=f"k{ordinal}", ordinal=ordinal,
                creator=creator,
            )
        )  # fmt: skip
    await session.flush()
    rows = (
        await session.execute(
            sa.select(
                ScrapingJobCreator.followers,
                ScrapingJobCreator.verified,
                ScrapingJobCreator.has_email,
                ScrapingJobCreator.search_text,
            )
            .where(ScrapingJobCreator.job_id == job.id)
            .order_by(ScrapingJobCreator.ordinal)
        )
    ).all()
    assert [tuple(r) for r in rows] == [
        (1200, True, True, "ann ann b yoga teacher"),
        (None, False, False, "cy  "),  # only a JSON true verifies, only a non-empty array mails
        (None, False, False, "  "),
    ]


async def test_result_batches_are_bounded_and_consistent(session):
    user = await make_user(session)
    job = await make_job(session, await make_campaign(session, user))
    too_many = [{"n": i} for i in range(RESULT_BATCH_MAX + 1)]
    await rejected(
        session,
        sa.insert(ScrapingResult).values(
            job_id=job.id,
            batch_no=0,
            first_ordinal=0,
            creator_count=len(too_many),
            creators=too_many,
        ),
        constraint="ck_scraping_results_creator_count_bounded",
    )
    await rejected(
        session,
        sa.insert(ScrapingResult).values(
            job_id=job.id, batch_no=0, first_ordinal=0, creator_count=3, creators=[{"n": 1}]
        ),
        constraint="ck_scraping_results_creators_match_count",
    )


@pytest.mark.parametrize(
    ("values", "constraint"),
    [
        ({"target_results": 0}, "ck_scraping_jobs_target_results_range"),
        ({"target_results": 1001}, "ck_scraping_jobs_target_results_range"),
        ({"status": "queued"}, "ck_scraping_jobs_status_allowed"),
        ({"platform": "Tiktok"}, "ck_scraping_jobs_platform_allowed"),
        ({"progress": 101}, "ck_scraping_jobs_progress_range"),
        ({"keywords": {"not": "an array"}}, "ck_scraping_jobs_keywords_is_array"),
    ],
)
async def test_job_columns_are_constrained(session, values, constraint):
    user = await make_user(session)
    campaign = await make_campaign(session, user)
    row = {"user_id": user.id, "campaign_id": campaign.id, "platform": "tiktok", **values}
    await rejected(session, sa.insert(ScrapingJob).values(**row), constraint=constraint)


async def test_a_creator_appears_once_per_list(session):
    user = await make_user(session)
    creator_list = await make_list(session, user)
    creator_id = await session.scalar(
        sa.text(
            "INSERT INTO creator_profiles (platform, external_id, handle) VALUES ('youtube', 'UC1', 'h') RETURNING id"
        )
    )
    session.add(ListItem(list_id=creator_list.id, creator_id=creator_id))
    await session.flush()
    await rejected(
        session,
        sa.insert(ListItem).values(list_id=creator_list.id, creator_id=creator_id),
        constraint="uq_list_items_list_id_creator_id",
    )


async def test_webhook_and_inbox_ids_are_unique_per_source_and_consumer(session):
    await session.execute(
        sa.text(
            "INSERT INTO webhook_events (event_id, source, event_type) VALUES ('evt_1', 'stripe', 'x')"
        )
    )
    await rejected(
        session,
        "INSERT INTO webhook_events (event_id, source, event_type) VALUES ('evt_1', 'stripe', 'x')",
        constraint="uq_webhook_events_source_event_id",
    )
    await session.execute(
        sa.text("INSERT INTO inbox (service, consumer, event_id) VALUES ('billing', 'c', 'e1')")
    )
    await rejected(
        session,
        "INSERT INTO inbox (service, consumer, event_id) VALUES ('billing', 'c', 'e1')",
        constraint="uq_inbox_consumer_event_id",
    )


async def test_updated_at_moves_on_raw_sql_updates(session):
    user = await make_user(session, children=False)
    before = await session.scalar(
        sa.text("SELECT updated_at FROM users WHERE id = :u"), {"u": user.id}
    )
    await session.execute(sa.text("SELECT pg_sleep(0.01)"))
    # now() is the transaction start, so commit a savepoint-free update in a new transaction.
    await session.execute(
        sa.text("UPDATE users SET updated_at = '2000-01-01', full_name = 'x' WHERE id = :u"),
        {"u": user.id},
    )
    after = await session.scalar(
        sa.text("SELECT updated_at FROM users WHERE id = :u"), {"u": user.id}
    )
    assert after.year != 2000 and after >= before


def test_every_table_has_uuid_key_and_tz_timestamps():
    for table in metadata.sorted_tables:
        assert [c.name for c in table.primary_key.columns] == ["id"], table.name
        assert isinstance(table.c.id.type, sa.Uuid), table.name
        for column in table.c:
            if isinstance(column.type, sa.DateTime):
                assert column.type.timezone, f"{table.name}.{column.name} is not timezone-aware"
        assert {"created_at", "updated_at"} <= set(table.c.keys()), table.name


def test_every_enumerated_value_fits_its_column():
    """Every CHECK'd enumeration value fits its varchar: no 'value too long' at runtime."""
    import re

    checked = 0
    for table in metadata.sorted_tables:
        for constraint in table.constraints:
            if isinstance(constraint, sa.CheckConstraint) and str(constraint.name).endswith(
                "_allowed"
            ):
                column = str(constraint.sqltext).split()[0]
                if column == "IS" or column not in table.c:
                    column = re.search(r"(\w+) IN \(", str(constraint.sqltext)).group(1)
                values = re.findall(r"'([^']*)'", str(constraint.sqltext))
                length = table.c[column].type.length
                assert max(map(len, values)) <= length, f"{table.name}.{column}"
                checked += 1
    assert checked >= 20


def test_every_foreign_key_is_indexed():
    """A foreign key without a leading index makes cascades and joins scan the child table."""
    for table in metadata.sorted_tables:
        leading = {tuple(c.name for c in idx.columns)[:1] for idx in table.indexes}
        leading |= {
            tuple(c.name for c in uc.columns)[:1]
            for uc in table.constraints
            if isinstance(uc, sa.UniqueConstraint)
        }
        for fk in table.foreign_keys:
            assert (fk.parent.name,) in leading, f"{table.name}.{fk.parent.name} has no index"


def test_every_one_to_one_child_has_unique_user_id():
    for model in ONE_TO_ONE_CHILDREN:
        table = model.__table__
        assert any(
            isinstance(c, sa.UniqueConstraint) and [col.name for col in c.columns] == ["user_id"]
            for c in table.constraints
        ), table.name


def test_models_share_the_base():
    assert all(issubclass(m, TableBase) for m in (Campaign, User, ScrapingJob))


async def test_six_plans_are_seeded_with_reference_limits(session):
    rows = (
        await session.execute(
            sa.text(
                "SELECT plan_key, campaigns_limit, creators_limit, enrichments_limit, price_monthly, is_legacy"
                " FROM subscription_plans ORDER BY display_order"
            )
        )
    ).all()
    assert [tuple(r) for r in rows] == [
        ("growth", -1, 6000, 500, 19900, False),
        ("scale", -1, 30000, 1000, 59900, False),
        ("pro", -1, 75000, 10000, 199900, False),
        ("glow_up", 3, 1000, 50, 9900, True),
        ("viral_surge", 10, 10000, 200, 24900, True),
        ("fame_flex", -1, -1, -1, 49900, True),
    ]


async def test_jsonb_queries_use_gin_indexes(session):
    await session.execute(sa.text("SET LOCAL enable_seqscan = off"))
    for table, predicate, index in [
        ("scraping_jobs", "keywords @> '[\"fitness\"]'::jsonb", "ix_scraping_jobs_keywords_gin"),
        ("scraping_jobs", "search_params ? 'targetAudience'", "ix_scraping_jobs_search_params_gin"),
    ]:
        plan = "\n".join(
            r[0]
            for r in (
                await session.execute(sa.text(f"EXPLAIN SELECT id FROM {table} WHERE {predicate}"))
            ).all()
        )
        assert index in plan, plan


async def test_clerk_ids_only_live_on_users():
    """One user id space: every other user reference is a uuid foreign key to users.id."""
    for table in metadata.sorted_tables:
        if table.name == "users":
            continue
        if "user_id" in table.c:
            assert isinstance(table.c.user_id.type, sa.Uuid), table.name
    assert clerk_id().startswith("user_")
