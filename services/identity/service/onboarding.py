"""Onboarding: pending → info_captured → intent_captured → plan_selected → completed.

Steps advance one at a time (an earlier step may be re-submitted to edit its fields);
``completed`` comes from billing (an active or trialing subscription), never from the client.
"""

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from shared.models.enums import OnboardingStep
from shared.queries.users import UserProfile, get_user_profile

from ..errors import IllegalTransition, OnboardingCompleted
from ..repository import IdentityRepository
from ..schemas import CompletedRequest, InfoCaptured, IntentCaptured, PlanSelected
from .users import ensure_profile, record_updated, record_user_event

STEPS = list(OnboardingStep)

OnboardingBody = InfoCaptured | IntentCaptured | PlanSelected | CompletedRequest


async def submit_onboarding(
    session: AsyncSession, clerk_user_id: str, body: OnboardingBody, *, email: str | None = None
) -> UserProfile:
    """One onboarding step: advance by one, or re-submit an earlier step to edit its fields.

    Skipping ahead is 409 ``illegal_transition``; ``completed`` is set by billing (a paid or
    trialing subscription), never by the client; nothing changes after completion.
    """
    await ensure_profile(session, clerk_user_id, email=email)
    repo = IdentityRepository(session)
    row = await repo.lock_user(clerk_user_id)  # serialises concurrent submissions of one user
    assert row is not None
    current, target = OnboardingStep(row.onboarding_step), OnboardingStep(body.step)
    if current is OnboardingStep.completed:
        raise OnboardingCompleted()
    if target is OnboardingStep.completed:
        raise IllegalTransition("Onboarding completes when billing confirms a subscription.")
    if STEPS.index(target) > STEPS.index(current) + 1:
        raise IllegalTransition(
            f"Cannot go from {current} to {target}; the next step is"
            f" {STEPS[STEPS.index(current) + 1]}.",
            extra={"current_step": current.value, "requested_step": target.value},
        )
    fields = body.model_dump(exclude={"step", "plan", "interval"})
    new_step = target if STEPS.index(target) > STEPS.index(current) else current
    if new_step != current:
        fields["onboarding_step"] = new_step.value
    if fields:
        await repo.update_user(row.id, **fields)
    profile_changes = {k: v for k, v in fields.items() if k != "onboarding_step"}
    if profile_changes:
        await record_updated(session, row.id, clerk_user_id, profile_changes)
    # Billing learns the intended plan from this event (user_subscriptions is billing's table).
    if new_step != current or isinstance(body, PlanSelected):
        await _record_step(
            session,
            row.id,
            clerk_user_id,
            current,
            new_step,
            plan=body.plan.value if isinstance(body, PlanSelected) else None,
            interval=body.interval if isinstance(body, PlanSelected) else None,
        )
    profile = await get_user_profile(session, clerk_user_id)
    assert profile is not None
    return profile


async def _record_step(
    session: AsyncSession,
    user_pk: uuid.UUID,
    clerk_user_id: str,
    previous: OnboardingStep,
    step: OnboardingStep,
    *,
    plan: str | None = None,
    interval: str | None = None,
) -> None:
    await record_user_event(
        session,
        "identity.onboarding.step_changed",
        user_pk,
        clerk_user_id,
        previous_step=previous,
        step=step,
        plan=plan,
        interval=interval,
    )


async def complete_onboarding(session: AsyncSession, user_pk: uuid.UUID) -> bool:
    """Billing reported an active or trialing subscription: onboarding is ``completed``."""
    repo = IdentityRepository(session)
    row = await repo.lock_user_by_pk(user_pk)
    if row is None or row.deleted_at is not None or row.onboarding_step == OnboardingStep.completed:
        return False
    await repo.update_user(user_pk, onboarding_step=OnboardingStep.completed.value)
    await _record_step(
        session, user_pk, row.user_id, OnboardingStep(row.onboarding_step), OnboardingStep.completed
    )
    return True
