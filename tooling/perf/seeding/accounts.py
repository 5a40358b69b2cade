"""Users with their 1:1 rows (subscription, billing), and later their usage and system data."""

from collections.abc import Iterator
from datetime import timedelta

import orjson

from shared.models.enums import OnboardingStep, PlanKey

from .state import INDUSTRIES, KEYWORDS, Seeding


def write_users(s: Seeding) -> None:
    rng, now, slug = s.rng, s.now, s.slug
    n_users = s.n_users = s.counts["users"]
    user_ids = s.user_ids = s.new_id.many(n_users)
    s.clerk_ids = [f"user_seed{slug}_{i:06d}" for i in range(n_users)]
    created = s.user_created = [
        now - timedelta(days=30 + rng.random() * 700) for _ in range(n_users)
    ]
    customers = s.customers = [
        f"cus_seed{slug}_{i:06d}" if i % 10 < 7 else None for i in range(n_users)
    ]
    plans = [p.value for p in PlanKey]

    def users() -> Iterator[tuple]:
        for i in range(n_users):
            completed = i % 8 != 0
            step = OnboardingStep.completed if completed else rng.choice(list(OnboardingStep))
            yield (
                user_ids[i], s.clerk_ids[i], f"seed{slug}.{i}@example.com", f"Seed User {i}",
                f"Brand {i}", f"A brand that sells {rng.choice(KEYWORDS)} things",
                rng.choice(INDUSTRIES), step.value, i == n_users - 1, created[i],
            )  # fmt: skip

    s.copy(
        "users",
        ("id", "user_id", "email", "full_name", "business_name", "brand_description",
         "industry", "onboarding_step", "is_admin", "created_at"),
        users(), n_users,
    )  # fmt: skip

    sub_statuses = ("active",) * 5 + ("trialing",) * 2 + ("none", "canceled", "past_due")

    def subscriptions() -> Iterator[tuple]:
        for i in range(n_users):
            status = sub_statuses[i % len(sub_statuses)]
            plan = None if status == "none" else plans[3 + i % 3]
            trial_start = created[i] + timedelta(days=1)
            trial_end = trial_start + timedelta(days=7)
            if status == "trialing":
                trial_start = now - timedelta(days=rng.randint(0, 6))
                trial_end = trial_start + timedelta(days=7)
            interval = None if plan is None else ("monthly" if i % 4 else "yearly")
            yield (
                user_ids[i], plan, plan, status, trial_start, trial_end, interval,
                None if plan is None else now + timedelta(days=rng.randint(1, 30)),
                "synced" if plan else "pending",
            )  # fmt: skip

    s.copy(
        "user_subscriptions",
        ("user_id", "current_plan", "intended_plan", "subscription_status",
         "trial_start_date", "trial_end_date", "billing_interval", "current_period_end",
         "billing_sync_status"),
        subscriptions(), n_users,
    )  # fmt: skip

    def billing() -> Iterator[tuple]:
        for i in range(n_users):
            has_card = customers[i] is not None
            yield (
                user_ids[i], customers[i],
                f"sub_seed{slug}_{i:06d}" if has_card else None,
                f"{rng.randint(0, 9999):04d}" if has_card else None,
                rng.choice(("visa", "mastercard", "amex")) if has_card else None,
                rng.randint(1, 12) if has_card else None,
                rng.randint(2027, 2031) if has_card else None,
                "US" if has_card else None,
            )  # fmt: skip

    s.copy(
        "user_billing",
        ("user_id", "stripe_customer_id", "stripe_subscription_id", "card_last4",
         "card_brand", "card_exp_month", "card_exp_year", "billing_address_country"),
        billing(), n_users,
    )  # fmt: skip


def write_usage_and_system_data(s: Seeding) -> None:
    """Usage counters that match what was written (campaigns, stored creators)."""
    rng, n_users, user_ids = s.rng, s.n_users, s.user_ids
    creators_by_user = [0] * n_users
    for j in range(s.n_jobs):
        creators_by_user[s.owners[s.job_campaign[j]]] += s.stored[j]
    month_start = s.now.replace(day=1, hour=0, minute=0, second=0)

    def usage() -> Iterator[tuple]:
        for i in range(n_users):
            yield (user_ids[i], s.per_user[i], min(creators_by_user[i], 2_000_000_000),
                   rng.randint(0, 50), month_start)  # fmt: skip

    s.copy(
        "user_usage",
        ("user_id", "usage_campaigns_current", "usage_creators_current_month",
         "enrichments_current_month", "usage_reset_date"),
        usage(), n_users,
    )  # fmt: skip

    def system_data() -> Iterator[tuple]:
        for i in range(n_users):
            yield (user_ids[i], s.user_created[i], orjson.dumps({"welcome": "sent"}).decode(),
                   "user.created", s.user_created[i])  # fmt: skip

    s.copy(
        "user_system_data",
        ("user_id", "signup_timestamp", "email_schedule_status", "last_webhook_event",
         "last_webhook_timestamp"),
        system_data(), n_users,
    )  # fmt: skip


def write_reservations(s: Seeding) -> int:
    """Settled usage behind the counters: a confirmed campaign reservation per campaign and a
    confirmed creators reservation per job that stored creators, each settled when its row
    was created. The triggers of ``usage_reservations`` count them by user and month into
    ``billing_usage_months`` (what ``GET /billing/usage/history`` reads) in one grouped upsert
    for the whole COPY. Written last: its
    ids are drawn after every other row's, so earlier rows stay what they were."""
    campaign_user = [s.user_ids[u] for u in s.owners]

    def rows() -> Iterator[tuple]:
        for c, campaign in enumerate(s.campaign_ids):
            yield (s.new_id(), campaign_user[c], "campaigns", 1, 1, f"campaign:{campaign}",
                   "confirmed", s.campaign_created[c], s.campaign_created[c])  # fmt: skip
        for j, job in enumerate(s.job_ids):
            if s.stored[j]:
                user, at = campaign_user[s.job_campaign[j]], s.job_created[j]
                yield (s.new_id(), user, "creators", s.stored[j], s.stored[j], f"job:{job}",
                       "confirmed", at, at)  # fmt: skip

    planned = s.n_campaigns + sum(1 for n in s.stored if n)
    return s.copy(
        "usage_reservations",
        ("id", "user_id", "resource", "amount", "used_amount", "idempotency_key", "status",
         "expires_at", "settled_at"),
        rows(), planned,
    )  # fmt: skip
