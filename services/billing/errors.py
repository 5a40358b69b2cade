"""The billing service's error codes."""

from shared.errors import BadRequest, Conflict, DependencyUnavailable, NotFound, ScoutError


class UnknownPlan(BadRequest):
    code = "unknown_plan"
    detail = "There is no such plan."


class UnknownPrice(ScoutError):
    """A Stripe price that maps to no plan (never read as a free one)."""

    status_code = 422
    code = "unknown_plan"
    detail = "The Stripe price maps to no plan."


class ReservationNotFound(NotFound):
    """A release for a reservation billing does not know (purged with its user)."""

    code = "reservation_not_found"
    detail = "No such reservation."


class BillingProviderUnavailable(DependencyUnavailable):
    """Stripe is not configured, or it failed: fail closed."""

    code = "billing_provider_unavailable"
    detail = "The billing provider is not configured."


class WebhookInProgress(Conflict):
    """Another attempt holds this Stripe event's lease; Stripe retries later."""

    code = "webhook_in_progress"
    detail = "This event is being processed; retry later."


class WebhookFailed(ScoutError):
    """Processing failed: 500 so Stripe retries (a 4xx would make Stripe give up)."""

    status_code = 500
    code = "webhook_processing_failed"
    detail = "The event could not be processed."
