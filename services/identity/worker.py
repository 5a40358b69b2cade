"""The identity worker, wiring only: which handlers, which streams, which schedules (the outbox
relay runs in every worker)."""

from shared.scheduler import Recurring
from shared.worker import ConsumerSpec, WorkerContext, WorkerSpec

from . import handlers

PURGE_JOB = "identity.purge_deleted_users"
ASK_AGAIN_JOB = "identity.ask_again_for_deletions"


def build(ctx: WorkerContext) -> WorkerSpec:
    return WorkerSpec(
        consumers=[
            ConsumerSpec(
                "billing",
                {
                    "billing.subscription.changed.v1": handlers.on_subscription_changed,
                    "billing.user.purged.v1": handlers.on_user_purged,
                },
            ),
            # Each purging service acknowledges its part of a user's deletion on its stream.
            ConsumerSpec("campaign", {"campaign.user.purged.v1": handlers.on_user_purged}),
            ConsumerSpec("scraping", {"scraping.user.purged.v1": handlers.on_user_purged}),
        ],
        jobs={
            PURGE_JOB: handlers.purge_users,
            ASK_AGAIN_JOB: handlers.ask_again_for_deletions,
        },
        schedules=[
            Recurring("purge_deleted_users", "* * * * *", PURGE_JOB),
            Recurring("ask_again_for_deletions", "17 * * * *", ASK_AGAIN_JOB),
        ],
    )
