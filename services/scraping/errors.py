"""The scraping service's error codes."""

from shared.errors import Conflict, LimitReached, NotFound, ScoutError


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


class EnrichmentNotFound(NotFound):
    """No enrichment with that id belongs to the caller (another user's answers the same)."""

    code = "enrichment_not_found"
    detail = "No such enrichment."


class CreatorNotFound(NotFound):
    """``GET /creators/{platform}/{external_id}`` for a creator never enriched."""

    code = "creator_not_found"
    detail = "No enriched profile of that creator yet: enrich it with POST /enrichments."


class EnrichmentsLimitReached(LimitReached):
    code = "enrichments_limit_reached"
    detail = "This enrichment needs more enrichments than remain this month on your plan."


class CreatorsNotInJob(ScoutError):
    """``POST /enrichments`` with creator keys the job never found."""

    status_code = 422
    code = "creators_not_in_job"
    detail = "Some creator keys are not among the job's results."


class NoCreatorsToEnrich(ScoutError):
    """An enrichment asked over request/reply whose creators all lack an id or handle."""

    status_code = 422
    code = "no_creators_to_enrich"
    detail = "None of the creators has an id and a handle to look up."
