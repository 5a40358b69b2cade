"""The billing worker, wiring only: which handlers, which streams, which schedules."""

from shared.scheduler import Recurring
from shared.worker import ConsumerSpec, WorkerContext, WorkerSpec

from . import handlers

# Scheduled upkeep (cron in UTC). Each job is idempotent; a missed run is caught up by the next.
SCHEDULES = [
    Recurring("expire-reservations", "* * * * *", "usage.expire_reservations", priority=10),
    Recurring("monthly-usage-reset", "5 * * * *", "usage.monthly_reset"),
    Recurring("trial-expiry", "*/15 * * * *", "subscriptions.trial_expiry"),
    Recurring("stripe-reconcile", "15 * * * *", "subscriptions.reconcile"),
]
JOB_ENDINGS = ("completed", "failed", "timed_out", "cancelled")


def build(ctx: WorkerContext) -> WorkerSpec:
    return WorkerSpec(
        consumers=[
            ConsumerSpec(
                "identity",
                {
                    "identity.user.created.v1": handlers.on_user_created,
                    "identity.user.deleted.v1": handlers.user_deleted_handler(ctx.settings),
                    "identity.onboarding.step_changed.v1": handlers.on_step_changed,
                },
            ),
            # campaign.campaign.created needs nothing: the reservation already counted it.
            ConsumerSpec(
                "campaign", {"campaign.campaign.deleted.v1": handlers.on_campaign_deleted}
            ),
            ConsumerSpec(
                "scraping",
                {
                    **{f"scraping.job.{kind}.v1": handlers.on_job_ended for kind in JOB_ENDINGS},
                    "scraping.enrichment.completed.v1": handlers.on_enrichment_ended,
                },
            ),
        ],
        rpc={
            "billing.usage.reserve": handlers.reserve_handler(ctx.sessions),
            "billing.usage.release": handlers.release_handler(ctx.sessions),
            "billing.usage.release_key": handlers.release_key_handler(ctx.sessions),
        },
        jobs={
            "usage.expire_reservations": handlers.expire_reservations,
            "usage.monthly_reset": handlers.monthly_reset,
            "subscriptions.reconcile": handlers.reconcile_handler(ctx.settings),
            "subscriptions.trial_expiry": handlers.trial_expiry_handler(ctx.settings),
        },
        schedules=SCHEDULES,
    )
