"""``/me``: the caller's own profile and onboarding (a user only ever sees their own data)."""

from fastapi import APIRouter, Request

from shared.web import CurrentUser, ReadSessionDep, SessionDep, error_responses

from ..errors import IllegalTransition, OnboardingCompleted, UserDeleted
from ..schemas import MeProfile, MeUpdate, OnboardingRequest
from ..service import read_profile, submit_onboarding, update_profile

router = APIRouter(prefix="/me", tags=["me"])


def _token_email(principal: CurrentUser) -> str | None:
    email = principal.claims.get("email")
    return email if isinstance(email, str) and 0 < len(email) <= 320 else None


@router.get(
    "", summary="My profile (created on first call)", responses=error_responses(UserDeleted)
)
async def get_me(principal: CurrentUser, reads: ReadSessionDep, request: Request) -> MeProfile:
    """The caller's profile, flattened across identity's and billing's tables. The first call
    creates the account when Clerk's webhook has not arrived yet (however many calls race,
    one account and one ``identity.user.created``); every later call is one read, outside any
    transaction."""
    return await read_profile(
        reads, request.app.state.sessions, principal.clerk_user_id, email=_token_email(principal)
    )


@router.patch("", summary="Update my profile fields", responses=error_responses(UserDeleted))
async def patch_me(body: MeUpdate, principal: CurrentUser, session: SessionDep) -> MeProfile:
    """Full name, business name, brand description, industry: omitted fields stay, ``null``
    clears one. Answers the whole profile."""
    fields = body.model_dump(exclude_unset=True)
    return await update_profile(
        session, principal.clerk_user_id, fields, email=_token_email(principal)
    )


@router.post(
    "/onboarding",
    summary="Submit an onboarding step",
    responses=error_responses(UserDeleted, IllegalTransition, OnboardingCompleted),
)
async def post_onboarding(
    body: OnboardingRequest, principal: CurrentUser, session: SessionDep
) -> MeProfile:
    """Steps advance one at a time: ``pending → info_captured → intent_captured →
    plan_selected``; repeating the current step updates its fields, skipping ahead is 409.
    ``completed`` is set by billing once a subscription is active or trialing."""
    return await submit_onboarding(
        session, principal.clerk_user_id, body, email=_token_email(principal)
    )
