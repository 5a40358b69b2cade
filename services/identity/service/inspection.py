"""One user's whole state across every service's tables, with the inconsistencies flagged.

Used by ``GET /admin/users/{clerk_user_id}`` and ``scout user inspect``. The checks target the
ways a user's state drifts when services disagree: trials "active" past their end, paid status
without a Stripe subscription, missing 1:1 rows, onboarding stuck behind a live subscription.
"""

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import SQLModel

from shared.models.enums import OnboardingStep, SubscriptionStatus
from shared.queries.users import UserProfile, get_user_profile

from ..repository import CHILDREN, IdentityRepository
from ..schemas import DeletionStep, EventSummary, Inconsistency, UserDossier

# Billing provisions its rows when it handles identity.user.created; give it this long.
PROVISIONING_GRACE = timedelta(minutes=5)
PAID = {SubscriptionStatus.active, SubscriptionStatus.trialing, SubscriptionStatus.past_due}


def user_owned_tables() -> list[sa.Table]:
    """Every table with a ``user_id`` foreign key to ``users.id`` (any service), sorted by name."""
    found = []
    for table in SQLModel.metadata.sorted_tables:
        column = table.c.get("user_id")
        if column is not None and any(
            fk.column.table.name == "users" for fk in column.foreign_keys
        ):
            found.append(table)
    return sorted(found, key=lambda t: t.name)


def detect_inconsistencies(
    profile: UserProfile,
    children: dict[str, bool],
    now: datetime,
    deletion: list[DeletionStep],
) -> list[Inconsistency]:
    """Pure checks over one user's state; each finding has a stable code and a sentence."""
    found: list[Inconsistency] = []

    def flag(code: str, detail: str) -> None:
        found.append(Inconsistency(code=code, detail=detail))

    status = profile.subscription_status
    if profile.deleted_at is not None:
        waiting = [
            f"{step.service} (since {step.since.isoformat(timespec='seconds')})"
            for step in deletion
            if step.pending
        ]
        flag(
            "deletion_pending",
            f"Deletion started at {profile.deleted_at.isoformat(timespec='seconds')}; "
            + (f"waiting for {', '.join(waiting)}." if waiting else "every service is done."),
        )
    settled = profile.created_at < now - PROVISIONING_GRACE
    for table, present in children.items():
        if not present and (settled or table == "user_system_data"):
            flag(f"missing_{table}", f"The user has no {table} row.")
    if status == SubscriptionStatus.trialing:
        if profile.trial_end_date is None:
            flag("trialing_without_trial_end", "Status is trialing but trial_end_date is empty.")
        elif profile.trial_end_date < now:
            flag(
                "trialing_with_trial_end_in_past",
                f"Status is trialing but the trial ended {profile.trial_end_date.isoformat()}.",
            )
    if status in PAID and not profile.stripe_subscription_id:
        flag(
            f"{status}_without_stripe_subscription",
            f"Status is {status} but there is no Stripe subscription id.",
        )
    if profile.stripe_subscription_id and not profile.stripe_customer_id:
        flag("stripe_subscription_without_customer", "A Stripe subscription but no customer id.")
    if status in PAID and not profile.current_plan:
        flag("subscription_without_plan", f"Status is {status} but current_plan is empty.")
    if status == SubscriptionStatus.none and profile.current_plan:
        flag("plan_without_subscription", f"Plan {profile.current_plan} but no subscription.")
    if (
        status in (SubscriptionStatus.active, SubscriptionStatus.trialing)
        and profile.onboarding_step != OnboardingStep.completed
    ):
        flag(
            "onboarding_behind_subscription",
            f"Subscription is {status} but onboarding is still {profile.onboarding_step}.",
        )
    if profile.onboarding_step == OnboardingStep.completed and status == SubscriptionStatus.none:
        flag("completed_without_subscription", "Onboarding completed but no subscription.")
    for resource, used, limit in (
        ("campaigns", profile.usage_campaigns_current, profile.campaigns_limit),
        ("creators", profile.usage_creators_current_month, profile.creators_limit),
        ("enrichments", profile.enrichments_current_month, profile.enrichments_limit),
    ):
        if limit >= 0 and used > limit and (limit > 0 or status != SubscriptionStatus.none):
            flag(f"{resource}_over_limit", f"{resource}: {used} used of a limit of {limit}.")
    return found


async def user_dossier(
    session: AsyncSession,
    clerk_user_id: str,
    *,
    events_limit: int = 50,
    now: datetime | None = None,
) -> UserDossier | None:
    """Everything about one user (None if there is no such user); a handful of statements."""
    now = now or datetime.now(UTC)
    profile = await get_user_profile(session, clerk_user_id, now=now)
    if profile is None:
        return None
    repo = IdentityRepository(session)
    related = await repo.row_counts(profile.id, user_owned_tables())
    children = {name: related.get(name, 0) > 0 for name in CHILDREN}
    events = await repo.recent_events(profile.id, events_limit)
    deletion = [
        DeletionStep(
            service=step.service,
            since=step.created_at,
            last_asked_at=step.requested_at,
            applied_at=step.applied_at,
        )
        for step in await repo.deletion_steps(profile.id)
    ]
    return UserDossier(
        profile=profile,
        trial_status=profile.trial_status.value,
        child_rows=children,
        related_rows=related,
        deletion=deletion,
        inconsistencies=detect_inconsistencies(profile, children, now, deletion),
        recent_events=[EventSummary.model_validate(dict(e._mapping)) for e in events],
    )
