"""The identity worker, wiring only: which handlers, which streams, which schedules (the outbox
relay runs in every worker)."""

from shared.scheduler import Recurring
from shared.worker import ConsumerSpec, WorkerContext, WorkerSpec

from . import handlers

PURGE_JOB = "identity.purge_deleted_users"


def build(ctx: WorkerContext) -> WorkerSpec:
    return WorkerSpec(
        consumers=[
            ConsumerSpec(
                "billing", {"billing.subscription.changed.v1": handlers.on_subscription_changed}
            )
        ],
        jobs={PURGE_JOB: handlers.purge_users},
        schedules=[Recurring("purge_deleted_users", "* * * * *", PURGE_JOB)],
    )
