"""The scraping worker: search and enrichment work items, purges, the timeout sweeper (jobs and
enrichments), and two request/reply servers: the answer to "which creators of this job?"
(``scraping.results.creators``) and the start of an enrichment for another service
(``scraping.enrichments.start``).

Work items sit on the ``SCRAPING_WORK`` work-queue stream; every worker process binds the same
durable pull consumer, so JetStream hands each item to exactly one of them and the load is
shared. The inbox makes a redelivered item a no-op, and a worker that dies mid-item rolls back
its transaction: the item is redelivered after ``ack_wait`` and done again, once.
"""

import asyncio
from datetime import timedelta
from typing import Any

from shared.queries.sessions import read_session_factory
from shared.quota import QuotaClient
from shared.scheduler import Recurring
from shared.worker import ConsumerSpec, WorkerContext, WorkerSpec

from . import handlers
from .providers import Provider, make_provider

SCHEDULES = [Recurring("timeout-sweeper", "* * * * *", "scraping.sweep_timeouts", priority=10)]
# A page is one provider call (with its retries): well inside ack_wait, and the consumer's
# keep-alive covers a slow one.
SEARCH_OPTIONS: dict[str, Any] = {"ack_wait": 60.0, "batch": 8}


def build(
    ctx: WorkerContext,
    *,
    provider: Provider | None = None,
    search_options: dict[str, Any] | None = None,
) -> WorkerSpec:
    """The worker spec; ``provider``/``search_options`` override settings (tests, tools)."""
    provider = provider or make_provider(ctx.settings)
    ttl_days = ctx.settings.enrichment_ttl_days
    enrichment_timeout = timedelta(minutes=ctx.settings.enrichment_timeout_minutes)
    quota = QuotaClient(ctx.nc, ctx.prefix, timeout=ctx.settings.quota_timeout_seconds)

    async def close_provider() -> None:
        """Holds the provider's HTTP client for the worker's life; closes it on stop."""
        try:
            await asyncio.Event().wait()
        finally:
            await provider.aclose()

    return WorkerSpec(
        consumers=[
            ConsumerSpec(
                "search",
                {
                    "scraping.work.search.v1": handlers.search_handler(provider),
                    "scraping.work.enrich.v1": handlers.enrich_handler(provider, ttl_days),
                },
                options={
                    **SEARCH_OPTIONS,
                    "ack_wait": ctx.settings.scraping_work_ack_wait_seconds,
                    **(search_options or {}),
                },
            ),
            ConsumerSpec("identity", {"identity.user.deleted.v1": handlers.on_user_deleted}),
            ConsumerSpec(
                "campaign", {"campaign.campaign.deleted.v1": handlers.on_campaign_deleted}
            ),
        ],
        rpc={
            "scraping.results.creators": handlers.results_creators_handler(
                read_session_factory(ctx.engine)
            ),
            "scraping.enrichments.start": handlers.start_enrichment_handler(
                ctx.sessions, quota, ttl_days
            ),
        },
        jobs={"scraping.sweep_timeouts": handlers.sweep_timeouts(enrichment_timeout)},
        schedules=SCHEDULES,
        tasks=[close_provider],
    )
