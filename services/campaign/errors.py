"""The campaign service's error codes."""

from shared.errors import Conflict, DependencyUnavailable, LimitReached, NotFound, ScoutError


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


class ListTooLargeToEnrich(ScoutError):
    status_code = 422
    code = "list_too_large"
    detail = "A list is enriched in one go up to 1,000 creators."


class ListEmpty(ScoutError):
    status_code = 422
    code = "list_empty"
    detail = "The list has no creators to enrich."


class ScrapingUnavailable(DependencyUnavailable):
    code = "scraping_unavailable"
    detail = "The scraping service could not be asked, so nothing was started; try again shortly."


class EnrichmentsLimitReached(LimitReached):
    code = "enrichments_limit_reached"
    detail = "This enrichment needs more enrichments than remain this month on your plan."
