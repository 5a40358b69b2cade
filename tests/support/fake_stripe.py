"""A local fake of the Stripe API on a real socket, for the official ``stripe`` library.

Point ``STRIPE_API_BASE`` at :attr:`FakeStripe.url`; the library's real HTTP code talks to it.
It keeps customers, checkout sessions and subscriptions in memory (tests may add or change
subscriptions directly to simulate what happened at Stripe), records every request, and can
be told to fail. :func:`sign` computes a ``Stripe-Signature`` header the way Stripe does.
"""

import hashlib
import hmac
import itertools
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .http import free_port, serving

_ids = itertools.count(1)


def new_id(prefix: str) -> str:
    return f"{prefix}_fake{next(_ids):06d}{int(time.time() * 1000) % 100000:05d}"


def unflatten(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Stripe's form encoding (``a[b][0][c]=v``) back to nested dicts/lists."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        parts = key.replace("]", "").split("[")
        node: Any = out
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            nxt_is_index = not last and parts[i + 1].isdigit()
            if isinstance(node, list):
                idx = int(part)
                while len(node) <= idx:
                    node.append({} if not last else None)
                if last:
                    node[idx] = value
                else:
                    if not isinstance(node[idx], dict | list):
                        node[idx] = [] if nxt_is_index else {}
                    node = node[idx]
            else:
                if last:
                    node[part] = value
                else:
                    node = node.setdefault(part, [] if nxt_is_index else {})
    return out


def sign(payload: bytes | str, secret: str, timestamp: int | None = None) -> str:
    """The ``Stripe-Signature`` header Stripe would send for ``payload``."""
    raw = payload.decode() if isinstance(payload, bytes) else payload
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.{raw}".encode(), hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def _error(status: int, message: str, code: str | None = "resource_missing") -> JSONResponse:
    error = {"type": "invalid_request_error", "message": message}
    if code:
        error["code"] = code
    return JSONResponse({"error": error}, status_code=status)


class FakeStripe:
    def __init__(self) -> None:
        self.customers: dict[str, dict[str, Any]] = {}
        self.sessions: dict[str, dict[str, Any]] = {}
        self.subscriptions: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str, dict[str, Any]]] = []
        self.fail_with: int | None = None  # answer every request with this status
        self.failures: list[int] = []  # answer the next requests with these statuses, in order
        self.url = ""
        self.app = Starlette(
            routes=[
                Route("/v1/customers", self._create_customer, methods=["POST"]),
                Route("/v1/customers/{id}", self._get_customer, methods=["GET"]),
                Route("/v1/checkout/sessions", self._create_session, methods=["POST"]),
                Route("/v1/checkout/sessions/{id}", self._get_session, methods=["GET"]),
                Route("/v1/subscriptions", self._list_subscriptions, methods=["GET"]),
                Route("/v1/subscriptions/{id}", self._get_subscription, methods=["GET"]),
                Route("/v1/subscriptions/{id}", self._update_subscription, methods=["POST"]),
                Route("/v1/subscriptions/{id}", self._cancel_subscription, methods=["DELETE"]),
            ]
        )

    # --- helpers for tests -----------------------------------------------------------------

    def subscription(
        self,
        *,
        customer: str,
        price: str,
        status: str = "active",
        user_id: str | None = None,
        trial_start: int | None = None,
        trial_end: int | None = None,
        created: int | None = None,
        current_period_end: int | None = None,
        cancel_at_period_end: bool = False,
        cancel_at: int | None = None,
        id: str | None = None,
    ) -> dict[str, Any]:
        """Add (or replace) a subscription object shaped like Stripe's."""
        sub_id = id or new_id("sub")
        now = int(time.time())
        period_end = current_period_end or now + 30 * 86400
        interval = "year" if price.endswith("yearly") else "month"
        sub = {
            "id": sub_id,
            "object": "subscription",
            "customer": customer,
            "status": status,
            "created": created or now,
            "trial_start": trial_start,
            "trial_end": trial_end,
            "cancel_at_period_end": cancel_at_period_end,
            "cancel_at": cancel_at,
            "canceled_at": None,
            "current_period_end": period_end,
            "metadata": {"user_id": user_id} if user_id else {},
            "items": {
                "object": "list",
                "data": [
                    {
                        "id": new_id("si"),
                        "object": "subscription_item",
                        "current_period_end": period_end,
                        "price": {
                            "id": price,
                            "object": "price",
                            "recurring": {"interval": interval},
                        },
                    }
                ],
            },
        }
        self.subscriptions[sub_id] = sub
        return sub

    def customer(self, *, email: str | None = None, metadata: dict | None = None) -> dict:
        cus = {
            "id": new_id("cus"),
            "object": "customer",
            "email": email,
            "metadata": metadata or {},
        }
        self.customers[cus["id"]] = cus
        return cus

    # --- the API -----------------------------------------------------------------------------

    async def _form(self, request: Request) -> dict[str, Any]:
        body = (await request.body()).decode()
        params = unflatten(parse_qsl(body or request.url.query, keep_blank_values=True))
        self.requests.append((request.method, request.url.path, params))
        return params

    def _fail(self) -> Response | None:
        status = self.failures.pop(0) if self.failures else self.fail_with
        if status:
            return _error(status, "the fake is told to fail", code="api_error")
        return None

    async def _create_customer(self, request: Request) -> Response:
        params = await self._form(request)
        if failed := self._fail():
            return failed
        cus = self.customer(email=params.get("email"), metadata=params.get("metadata"))
        return JSONResponse(cus)

    async def _get_customer(self, request: Request) -> Response:
        await self._form(request)
        cus = self.customers.get(request.path_params["id"])
        return JSONResponse(cus) if cus else _error(404, "No such customer")

    async def _create_session(self, request: Request) -> Response:
        params = await self._form(request)
        if failed := self._fail():
            return failed
        sid = new_id("cs")
        session = {
            "id": sid,
            "object": "checkout.session",
            "url": f"{self.url}/pay/{sid}",
            "mode": params.get("mode"),
            "customer": params.get("customer"),
            "customer_email": params.get("customer_email"),
            "client_reference_id": params.get("client_reference_id"),
            "metadata": params.get("metadata", {}),
            "subscription": None,
            "params": params,
        }
        self.sessions[sid] = session
        return JSONResponse(session)

    async def _get_session(self, request: Request) -> Response:
        await self._form(request)
        s = self.sessions.get(request.path_params["id"])
        return JSONResponse(s) if s else _error(404, "No such checkout session")

    async def _list_subscriptions(self, request: Request) -> Response:
        params = await self._form(request)
        if failed := self._fail():
            return failed
        subs = [
            s
            for s in self.subscriptions.values()
            if not params.get("customer") or s["customer"] == params["customer"]
        ]
        if params.get("status", "active") != "all":
            subs = [s for s in subs if s["status"] == params.get("status", "active")]
        subs.sort(key=lambda s: s["created"], reverse=True)
        return JSONResponse(
            {"object": "list", "data": subs, "has_more": False, "url": "/v1/subscriptions"}
        )

    async def _get_subscription(self, request: Request) -> Response:
        await self._form(request)
        if failed := self._fail():
            return failed
        sub = self.subscriptions.get(request.path_params["id"])
        return JSONResponse(sub) if sub else _error(404, "No such subscription")

    async def _update_subscription(self, request: Request) -> Response:
        params = await self._form(request)
        if failed := self._fail():
            return failed
        sub = self.subscriptions.get(request.path_params["id"])
        if sub is None:
            return _error(404, "No such subscription")
        for change in params.get("items", []):
            for item in sub["items"]["data"]:
                if item["id"] == change.get("id") and change.get("price"):
                    item["price"]["id"] = change["price"]
        sub["metadata"].update(params.get("metadata", {}))
        return JSONResponse(sub)

    async def _cancel_subscription(self, request: Request) -> Response:
        await self._form(request)
        if failed := self._fail():
            return failed
        sub = self.subscriptions.get(request.path_params["id"])
        if sub is None:
            return _error(404, "No such subscription")
        if sub["status"] == "canceled":
            return _error(400, "This subscription has already been canceled.", code=None)
        sub.update(status="canceled", canceled_at=int(time.time()))
        return JSONResponse(sub)

    def event(self, type: str, obj: dict[str, Any], *, created: int | None = None) -> bytes:
        """A webhook event body (JSON bytes) of ``type`` about ``obj``."""
        return orjson.dumps(
            {
                "id": new_id("evt"),
                "object": "event",
                "type": type,
                "created": created or int(time.time()),
                "livemode": False,
                "api_version": "2025-01-01",
                "data": {"object": obj},
            }
        )


@asynccontextmanager
async def fake_stripe() -> AsyncIterator[FakeStripe]:
    fake = FakeStripe()
    port = free_port()
    fake.url = f"http://127.0.0.1:{port}"
    async with serving(fake.app, port=port):
        yield fake
