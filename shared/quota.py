"""The one client for asking billing about quota (``billing.usage.reserve`` / ``.release``).

Billing owns usage; the other services only ask, over NATS request/reply, and the same way
from a route (``shared.web.Quota``) and from a worker (``QuotaClient(ctx.nc, ctx.prefix)``).
Fail closed: when NATS is down, nobody answers, or billing answers with a server error, the
caller gets :class:`BillingUnavailable` (503) and nothing is spent. Every question is keyed
(``idempotency_key`` for a reserve, the reservation id for a release), so a caller retrying
after a 503 never spends twice.

A user without any plan is refused with :class:`NoActivePlan` (403 ``no_active_plan``) rather
than a "limit reached" they could not make sense of: they need a plan, not an upgrade.

A reserve key names one operation (callers derive it from the operation's id, which an
``Idempotency-Key`` keeps stable across retries), so a retried operation finds its own hold
again. A caller that stops waiting for a reserve's answer gives the key up at once
(``billing.usage.release_key``, sent in the background): if billing was only slow, the hold it
committed is given back, and a reserve that reaches billing later finds the key taken by a
released tombstone and holds nothing.

Giving a hold back never depends on one message getting through: a give-up, and a release
that finds billing unreachable (:meth:`QuotaClient.try_release`), keep asking in the background
with capped backoff until billing answers — a Postgres or NATS outage, or a billing worker
restarting, only delays it — for up to :data:`GIVE_BACK_WITHIN_SECONDS`; billing's expiry is
the backstop beyond that (or when the asking process itself dies).

How the counters move is billing's business (``services/billing/service/usage.py``): a reserve
counts at once, a release keeps ``used_amount`` counted and gives back the rest, and a second
release of a settled reservation answers the same again.
"""

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable

from nats.aio.client import Client as NATS

from shared.errors import DependencyUnavailable, Forbidden
from shared.events import rpc
from shared.events.catalogue import (
    UsageReleaseKeyRequest,
    UsageReleaseReply,
    UsageReleaseRequest,
    UsageReserveReply,
    UsageReserveRequest,
)
from shared.models.enums import UsageResource

log = logging.getLogger("scout.quota")

RESERVE = "billing.usage.reserve"
RELEASE = "billing.usage.release"
RELEASE_KEY = "billing.usage.release_key"
# Billing's answer to a reserve whose key was given up before.
RESERVATION_CLOSED = "reservation_closed"
# Room for a busy billing worker; the questions are idempotent, so a timeout is safe to retry.
TIMEOUT_SECONDS = 5.0
# Billing's code for a reserve refused because the user has no plan at all.
NO_ACTIVE_PLAN = "no_active_plan"


class BillingUnavailable(DependencyUnavailable):
    code = "billing_unavailable"
    detail = "Billing is unreachable, so nothing was reserved; try again shortly."


class ReservationClosed(DependencyUnavailable):
    code = "reservation_closed"
    detail = "An earlier attempt of this operation gave its reservation up; send the request again."


# How long a hold is given back in the background, and the backoff between attempts.
GIVE_BACK_WITHIN_SECONDS = 600.0
GIVE_BACK_FIRST_RETRY_SECONDS = 0.5
GIVE_BACK_MAX_RETRY_SECONDS = 5.0

# Give-backs in flight (a task needs a strong reference until it finishes).
_giving_up: set[asyncio.Task] = set()


class NoActivePlan(Forbidden):
    """The user has no plan yet, so nothing can be reserved (not a limit they reached)."""

    code = NO_ACTIVE_PLAN
    detail = (
        "You have no plan yet, so this cannot be created: choose one with POST /billing/checkout"
        " (GET /plans lists them)."
    )
    # Where billing runs without Stripe in development, it sells plans itself.
    local_billing_hint = (
        " In development the checkout_url it answers is a local payment page; or, from a"
        " terminal: ./scripts/scout billing subscribe <your Clerk user id> --plan growth"
    )


class QuotaClient:
    """Reserve and release quota at billing through one NATS connection (None: NATS is down).

    ``local_billing``: billing sells plans itself (development without Stripe), so a user with
    no plan is told how to get one locally.
    """

    def __init__(
        self,
        nc: NATS | None,
        prefix: str,
        *,
        timeout: float = TIMEOUT_SECONDS,
        local_billing: bool = False,
    ) -> None:
        self.nc, self.prefix, self.timeout = nc, prefix, timeout
        self.local_billing = local_billing

    async def reserve(
        self,
        user_id: uuid.UUID,
        resource: UsageResource,
        amount: int,
        *,
        key: str,
        ttl_seconds: int,
    ) -> UsageReserveReply:
        """Hold ``amount`` of ``resource`` under ``key``; the reply says whether it was allowed
        (and if not, the used/limit figures and the limit's code). Raises
        :class:`BillingUnavailable` (having given the key up, see the module doc),
        :class:`ReservationClosed` when an earlier attempt with ``key`` gave it up, and
        :class:`NoActivePlan` when the user has no plan at all."""
        request = UsageReserveRequest(
            user_id=user_id,
            resource=resource,
            amount=amount,
            idempotency_key=key,
            ttl_seconds=ttl_seconds,
        )
        try:
            reply = await self._ask(RESERVE, request)
        except BillingUnavailable:
            self.give_up(user_id, resource, amount, key=key)
            raise
        if not reply.allowed and reply.code == RESERVATION_CLOSED:
            raise ReservationClosed()
        if not reply.allowed and reply.code == NO_ACTIVE_PLAN:
            hint = NoActivePlan.local_billing_hint if self.local_billing else ""
            raise NoActivePlan(NoActivePlan.detail + hint)
        return reply

    async def release_key(
        self, user_id: uuid.UUID, resource: UsageResource, amount: int, *, key: str
    ) -> UsageReleaseReply:
        """Give up the hold asked under ``key``, whether billing has it yet or not."""
        request = UsageReleaseKeyRequest(
            user_id=user_id, resource=resource, amount=amount, idempotency_key=key
        )
        return await self._ask(RELEASE_KEY, request)

    def give_up(
        self, user_id: uuid.UUID, resource: UsageResource, amount: int, *, key: str
    ) -> None:
        """:meth:`release_key` in the background, asked again until billing answers: the
        caller answers now, billing gives the hold back when a message reaches it."""
        self._keep_asking(
            lambda: self.release_key(user_id, resource, amount, key=key),
            "quota.give_up_failed", {"key": key},
        )  # fmt: skip

    def _keep_asking(self, ask: Callable[[], Awaitable[object]], failed: str, extra: dict) -> None:
        """Run ``ask`` in the background until billing answers it: retried with capped backoff
        while billing is unreachable, for up to :data:`GIVE_BACK_WITHIN_SECONDS`. Any other
        failure (billing answered "no") and running out of time are logged as ``failed``."""

        async def until_answered() -> None:
            deadline = time.monotonic() + GIVE_BACK_WITHIN_SECONDS
            delay = GIVE_BACK_FIRST_RETRY_SECONDS
            while True:
                try:
                    await ask()
                    return
                except BillingUnavailable as exc:
                    if time.monotonic() + delay > deadline:
                        log.warning(failed, extra={**extra, "error": repr(exc), "gave_up": True})
                        return
                except Exception as exc:
                    log.warning(failed, extra={**extra, "error": repr(exc)})
                    return
                await asyncio.sleep(delay)
                delay = min(GIVE_BACK_MAX_RETRY_SECONDS, delay * 2)

        task = asyncio.get_running_loop().create_task(until_answered())
        _giving_up.add(task)
        task.add_done_callback(_giving_up.discard)

    async def release(self, reservation_id: uuid.UUID, used_amount: int) -> UsageReleaseReply:
        """Settle a hold: ``used_amount`` stays counted, the rest is given back. Raises
        :class:`BillingUnavailable`, or ``RemoteError`` (404 ``reservation_not_found``) for a
        reservation billing no longer knows (purged with its user)."""
        request = UsageReleaseRequest(reservation_id=reservation_id, used_amount=used_amount)
        return await self._ask(RELEASE, request)

    async def try_release(
        self, reservation_id: uuid.UUID, used_amount: int
    ) -> UsageReleaseReply | None:
        """:meth:`release` where a failure must not fail the caller: when billing cannot be
        reached, the release is asked again in the background until it answers (see the module
        doc); any other failure is logged."""
        try:
            return await self.release(reservation_id, used_amount)
        except BillingUnavailable:
            self._keep_asking(
                lambda: self.release(reservation_id, used_amount),
                "quota.release_failed", {"reservation_id": str(reservation_id)},
            )  # fmt: skip
            return None
        except Exception as exc:
            log.warning(
                "quota.release_failed",
                extra={"reservation_id": str(reservation_id), "error": repr(exc)},
            )
            return None

    async def _ask(
        self,
        subject: str,
        request: UsageReserveRequest | UsageReleaseRequest | UsageReleaseKeyRequest,
    ):
        if self.nc is None or not self.nc.is_connected:
            raise BillingUnavailable()
        try:
            return await rpc.request(
                self.nc, subject, request, prefix=self.prefix, timeout=self.timeout
            )
        except DependencyUnavailable as exc:
            raise BillingUnavailable() from exc
        except rpc.RemoteError as exc:
            if exc.status_code >= 500:  # billing answered but failed: just as closed as silence
                raise BillingUnavailable() from exc
            raise
