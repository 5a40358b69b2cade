"""The campaign worker, wiring only: which handlers, which streams, which schedules.

The dashboard reads scraping's tables directly (reads across services are allowed), so no
``scraping.job.*`` consumer keeps a copy of job state here.
"""

from shared.quota import QuotaClient
from shared.scheduler import Recurring
from shared.worker import ConsumerSpec, WorkerContext, WorkerSpec

from . import handlers
from .service import CONFIRM_JOB

SWEEP_JOB = "campaign.sweep_deleted"
SCHEDULES = [Recurring("sweep-deleted-campaigns", "* * * * *", SWEEP_JOB)]


def build(ctx: WorkerContext) -> WorkerSpec:
    quota = QuotaClient(ctx.nc, ctx.prefix, timeout=ctx.settings.quota_timeout_seconds)
    return WorkerSpec(
        consumers=[
            ConsumerSpec("identity", {"identity.user.deleted.v1": handlers.on_user_deleted}),
            ConsumerSpec(
                "scraping", {"scraping.creator.enriched.v1": handlers.on_creator_enriched}
            ),
        ],
        jobs={
            CONFIRM_JOB: handlers.confirm_reservation_handler(quota),
            SWEEP_JOB: handlers.sweep_deleted,
        },
        schedules=SCHEDULES,
    )
