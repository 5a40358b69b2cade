"""After the traffic and the faults: was anything lost, applied twice, or left hanging?

Read from the stack's own Postgres once everything has settled: every published event applied
exactly once by each consumer of its subject, no dead letters, no held reservation, no job
that never ended, usage counters equal to the live rows, and no unretrieved-exception noise in
any container's log.
"""

import asyncio
import time

from tests.support.wait import eventually

from .stack import Stack

# Settling takes seconds: holds a failed request gave back are released as soon as billing
# answers, and a message a killed worker held is redelivered after its ``ack_wait`` (30-60 s).
# The bound leaves room for the backstop, billing's expiry of a hold nobody gave back (campaign
# holds live 5 minutes; the expiry job runs every minute), so a stranded hold still settles.
SETTLE_WITHIN_S = 420.0

# The consumers Scout's workers run, and the event subjects each applies. The check also takes
# every (consumer, subject) pair found in the inbox, so a consumer added later is covered once
# it has applied anything; this list makes sure a consumer that applied nothing is noticed.
CONSUMERS = {
    "billing_identity": (
        "identity.user.created.v1",
        "identity.user.deleted.v1",
        "identity.onboarding.step_changed.v1",
    ),
    "billing_campaign": ("campaign.campaign.deleted.v1",),
    "billing_scraping": tuple(
        f"scraping.job.{kind}.v1" for kind in ("completed", "failed", "timed_out", "cancelled")
    ),
    "campaign_identity": ("identity.user.deleted.v1",),
    "identity_billing": ("billing.subscription.changed.v1",),
    "scraping_search": ("scraping.work.search.v1",),
    "scraping_identity": ("identity.user.deleted.v1",),
    "scraping_campaign": ("campaign.campaign.deleted.v1",),
}
UNRETRIEVED = ("Future exception was never retrieved", "Task exception was never retrieved")


def applications(stack: Stack) -> list[list[str]]:
    """(consumer, subject, events of the subject, of them applied by the consumer) per pair."""
    expected = ", ".join(f"('{c}', '{s}')" for c, subjects in CONSUMERS.items() for s in subjects)
    return stack.sql(
        f"WITH pairs(consumer, subject) AS (VALUES {expected}"
        "  UNION SELECT DISTINCT consumer, subject FROM inbox WHERE subject IS NOT NULL)"
        " SELECT p.consumer, p.subject, count(e.id), count(i.id)"
        " FROM pairs p JOIN events e ON e.type || '.v' || e.version = p.subject"
        " LEFT JOIN inbox i ON i.consumer = p.consumer AND i.event_id = e.id::text"
        " GROUP BY 1, 2 ORDER BY 1, 2"
    )


def unsettled(stack: Stack) -> dict[str, int]:
    """What is still on its way. A message a SIGKILLed worker had fetched but not acknowledged
    is redelivered after its consumer's ``ack_wait``, so "not yet applied" counts as on its way
    until the deadline; :func:`check_books` then names the pairs that stayed short."""
    return {
        "events not yet applied": sum(
            max(0, int(n_events) - int(n_applied))
            for _, _, n_events, n_applied in applications(stack)
        ),
        "unpublished events": stack.scalar("SELECT count(*) FROM events_pending"),
        "jobs not ended": stack.scalar(
            "SELECT count(*) FROM scraping_jobs WHERE status IN ('pending', 'processing')"
        ),
        "reservations held": stack.scalar(
            "SELECT count(*) FROM usage_reservations WHERE status = 'reserved'"
        ),
    }


async def settle(stack: Stack) -> str:
    """Wait until nothing is in flight any more; says how long it took and what was waiting."""
    at_stop = await asyncio.to_thread(unsettled, stack)

    async def quiet() -> bool:
        return not any((await asyncio.to_thread(unsettled, stack)).values())

    start = time.monotonic()
    try:
        await eventually(quiet, within=SETTLE_WITHIN_S, interval=1.0)
    except AssertionError:
        return f"not settled {SETTLE_WITHIN_S:.0f} s after the traffic stopped"
    waiting = {k: v for k, v in at_stop.items() if v} or "nothing"
    return f"settled {time.monotonic() - start:.0f} s after the traffic stopped (waiting then: {waiting})"


def check_books(stack: Stack) -> tuple[list[str], list[str]]:
    """(problems, figures) of the stack's data and logs."""
    problems = [f"{k}: {v}" for k, v in unsettled(stack).items() if v]
    pairs = applications(stack)
    problems += [
        f"{consumer} applied {n_applied} of {n_events} {subject}"
        for consumer, subject, n_events, n_applied in pairs
        if n_events != n_applied
    ]
    dead = stack.sql("SELECT consumer, subject, left(error, 160) FROM dead_letters")
    problems += [f"dead letter: {row}" for row in dead]
    usage = stack.sql(
        "SELECT u.user_id, uu.usage_campaigns_current,"
        " (SELECT count(*) FROM campaigns c WHERE c.user_id = u.id AND c.deleted_at IS NULL),"
        " uu.usage_creators_current_month,"
        " (SELECT coalesce(sum(j.processed_results), 0) FROM scraping_jobs j"
        "  WHERE j.user_id = u.id)"
        " FROM users u JOIN user_usage uu ON uu.user_id = u.id"
    )
    for clerk, campaigns_used, campaigns_live, creators_used, creators_stored in usage:
        if campaigns_used != campaigns_live:
            problems.append(f"{clerk}: campaign usage {campaigns_used}, live {campaigns_live}")
        if creators_used != creators_stored:
            problems.append(f"{clerk}: creator usage {creators_used}, stored {creators_stored}")
    doubled = stack.sql(
        "SELECT j.id, j.processed_results, count(c.id) FROM scraping_jobs j"
        " LEFT JOIN scraping_job_creators c ON c.job_id = j.id"
        " GROUP BY j.id HAVING j.processed_results <> count(c.id)"
    )
    problems += [f"job {job}: {n} creators counted, {m} stored" for job, n, m in doubled]
    for phrase in UNRETRIEVED:
        counts = {name: log.count(phrase) for name, log in stack.logs_by_service().items()}
        if any(counts.values()):
            where = ", ".join(f"{name} {n}" for name, n in sorted(counts.items()) if n)
            problems.append(f"logs: {phrase!r} x{sum(counts.values())} ({where})")
    jobs = dict(stack.sql("SELECT status, count(*) FROM scraping_jobs GROUP BY 1 ORDER BY 1"))
    applied = sum(int(row[3]) for row in pairs)
    figures = [
        f"{len(pairs)} (consumer, subject) pairs, {applied} applications checked",
        f"jobs by status: {jobs}; users checked: {len(usage)}",
    ]
    return problems, figures
