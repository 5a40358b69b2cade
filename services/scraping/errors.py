"""The scraping service's error codes."""

from shared.errors import Conflict, LimitReached, NotFound


class JobNotFound(NotFound):
    """No job with that id belongs to the caller (another user's answers the same)."""

    code = "job_not_found"
    detail = "No such job."


class CampaignNotFound(NotFound):
    """``POST /jobs`` for a campaign the caller does not have (or that is being deleted)."""

    code = "campaign_not_found"
    detail = "No such campaign."


class JobAlreadyEnded(Conflict):
    code = "job_already_ended"
    detail = "The job already ended."


class CreatorsLimitReached(LimitReached):
    code = "creators_limit_reached"
    detail = "This search needs more creators than remain this month on your plan."
