"""The billing service's error codes."""

from shared.errors import Conflict, DependencyUnavailable, NotFound, ScoutError


class UnknownPlan(ScoutError):
    """A plan that is not on offer (the body named a plan key that is not sold)."""

    status_code = 422
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


class CheckoutSessionNotFound(NotFound):
    """A local checkout session id billing did not make, or one that expired."""

    code = "checkout_session_not_found"
    detail = "No such checkout session (it may have expired; start a new checkout)."


class LocalPaymentRejected(ScoutError):
    """Billing's own webhook route did not accept the events of a local payment."""

    status_code = 502
    code = "local_payment_rejected"
    detail = "The payment's webhooks were not accepted."
