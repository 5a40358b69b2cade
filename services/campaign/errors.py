"""The campaign service's error codes."""

from shared.errors import Conflict, LimitReached, NotFound


class CampaignNotFound(NotFound):
    """No live campaign with that id belongs to the caller (another user's answers the same)."""

    code = "campaign_not_found"
    detail = "No such campaign."


class ListNotFound(NotFound):
    code = "list_not_found"
    detail = "No such list."


class JobNotFound(NotFound):
    """``from_job`` names a job the caller does not have (another user's answers the same)."""

    code = "job_not_found"
    detail = "No such job."


class IllegalStatusTransition(Conflict):
    """A status change that is not the next step of draft → active → completed → archived."""

    code = "illegal_status_transition"


class CampaignLimitReached(LimitReached):
    code = "campaign_limit_reached"
    detail = "You have reached your plan's campaign limit; upgrade to add more."
