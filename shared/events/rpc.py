"""Request/reply for synchronous questions between services (``billing.usage.reserve`` …).

Core NATS, not JetStream: an unanswered question must fail fast (503, fail closed), not wait in
a stream. Subjects honour the prefix; catalogued subjects (``catalogue.RPC``) are typed both ways.
Wire format: request ``{"data": …}``; reply ``{"data": …}`` or ``{"error": {code, detail, status}}``.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import nats.errors
import orjson
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from pydantic import BaseModel, ValidationError

from shared.context import bound, current_correlation_id
from shared.errors import DependencyUnavailable, ScoutError

from .catalogue import RPC
from .envelope import prefixed
from .failures import is_transient
from .health import DatabaseHealth

log = logging.getLogger(__name__)

CORRELATION_HEADER = "Scout-Correlation-Id"
RpcHandler = Callable[[Any], Awaitable[BaseModel | dict[str, Any]]]

__all__ = ["DependencyUnavailable", "RemoteError", "request", "serve"]


class RemoteError(ScoutError):
    """The serving service answered with an error; keeps its status and code (e.g. a limit)."""

    def __init__(self, detail: str, *, code: str, status_code: int) -> None:
        super().__init__(detail, code=code)
        self.status_code = status_code


async def request(
    nc: NATS,
    subject: str,
    payload: BaseModel | dict[str, Any],
    *,
    prefix: str = "",
    timeout: float = 2.0,  # noqa: ASYNC109 — handed to nc.request, as in nats-py's own API
) -> Any:
    """Ask ``subject`` and return the reply (the catalogue's reply model when it has one).

    Raises :class:`DependencyUnavailable` when nobody serves the subject, it does not answer
    within ``timeout`` or it answers with a 5xx error (it is up but cannot serve), and
    :class:`RemoteError` when it answers with a 4xx error (a limit, a bad request).
    """
    spec = RPC.get(subject)
    if spec is not None and not isinstance(payload, spec.request):
        payload = spec.request.model_validate(payload)
    data = payload.model_dump(mode="json") if isinstance(payload, BaseModel) else payload
    correlation_id = current_correlation_id()
    headers = {CORRELATION_HEADER: correlation_id} if correlation_id else None
    try:
        msg = await nc.request(
            prefixed(subject, prefix),
            orjson.dumps({"data": data}),
            timeout=timeout,
            headers=headers,
        )
    except nats.errors.NoRespondersError:
        raise DependencyUnavailable(f"no service answers {subject}") from None
    except TimeoutError:
        raise DependencyUnavailable(f"{subject} did not answer within {timeout:g}s") from None
    except nats.errors.Error as exc:  # connection closed or draining
        raise DependencyUnavailable(f"cannot ask {subject}: {exc}") from None
    reply = orjson.loads(msg.data)
    if error := reply.get("error"):
        if error["status"] >= 500:  # the peer answered but could not serve: as closed as silence
            raise DependencyUnavailable(f"{subject}: {error['detail']}")
        raise RemoteError(error["detail"], code=error["code"], status_code=error["status"])
    return spec.reply.model_validate(reply["data"]) if spec else reply["data"]


async def serve(
    nc: NATS,
    subject: str,
    handler: RpcHandler,
    *,
    prefix: str = "",
    queue: str | None = None,
    max_concurrency: int = 64,
    health: DatabaseHealth | None = None,
) -> Subscription:
    """Answer ``subject`` with ``handler`` in a queue group, so every worker shares the load.

    With ``health`` (the process's database gate), a question that arrives while the database
    is known to be away is answered 503 at once instead of waiting on a connection, and a
    failure that shows it away closes the gate."""
    spec = RPC.get(subject)
    limit = asyncio.Semaphore(max_concurrency)
    running: set[asyncio.Task] = set()

    async def answer(msg: Msg) -> None:
        async with limit:
            reply = await _reply(msg)
            try:
                await msg.respond(orjson.dumps(reply))
            except nats.errors.Error as exc:  # the asker is gone; it already timed out
                log.warning("rpc.reply_failed", extra={"subject": subject, "error": repr(exc)})

    async def _reply(msg: Msg) -> dict[str, Any]:
        try:  # a question that does not parse is the asker's fault (and only that is 422)
            data = orjson.loads(msg.data)["data"]
            if spec is not None:
                data = spec.request.model_validate(data)
        except (ValidationError, orjson.JSONDecodeError, KeyError, TypeError) as exc:
            return _error("validation_error", f"bad {subject} request: {exc}", 422)
        if health is not None and not health.healthy:
            return _error("dependency_unavailable", f"{subject}: try again later", 503)
        try:
            with bound((msg.headers or {}).get(CORRELATION_HEADER)):
                result = await handler(data)
        except ScoutError as exc:
            return _error(exc.code, exc.detail, exc.status_code)
        except Exception as exc:
            if health is not None:
                health.report(exc)
            if is_transient(exc):  # e.g. our database is away: ask again later
                log.warning(
                    "rpc.dependency_unavailable", extra={"subject": subject, "error": repr(exc)}
                )
                return _error("dependency_unavailable", f"{subject}: try again later", 503)
            log.exception("rpc.handler_failed", extra={"subject": subject})
            return _error("internal_error", f"{subject} failed", 500)
        return {"data": result.model_dump(mode="json") if isinstance(result, BaseModel) else result}

    async def on_request(msg: Msg) -> None:
        # nats-py runs a subscription's callbacks one at a time: hand each to its own task.
        task = asyncio.create_task(answer(msg))
        running.add(task)
        task.add_done_callback(running.discard)

    full = prefixed(subject, prefix)
    return await nc.subscribe(full, queue=queue or full, cb=on_request)


def _error(code: str, detail: str, status: int) -> dict[str, Any]:
    return {"error": {"code": code, "detail": detail, "status": status}}
