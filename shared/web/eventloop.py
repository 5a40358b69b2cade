"""The event loop the APIs run on: uvloop, with outgoing connections resolved before connecting.

uvloop's ``create_connection`` resolves a host name on a future of its own; when the call is
cancelled while that lookup is still running (``asyncio.wait_for`` around a connect, as nats-py
does on every reconnect attempt), the lookup's failure is never retrieved and asyncio logs
``Future exception was never retrieved (gaierror)`` for each attempt. That is what a stopped
NATS container looked like in an API's log: its name stops resolving, each lookup outlasts the
connect timeout, and every attempt left one such line. :class:`Loop` resolves the name first
with ``getaddrinfo`` (which cancels cleanly) and connects to the addresses it got, so a
cancelled connect leaves nothing behind. Everything else is uvloop's.

``scout api`` names :class:`Loop` as uvicorn's loop (:data:`UVICORN_LOOP`, its ``loop`` setting).
"""

import asyncio
import ipaddress
import socket
from collections.abc import Callable
from typing import Any

import uvloop


def _numeric(host: str) -> bool:
    try:
        ipaddress.ip_address(host.partition("%")[0])
    except ValueError:
        return False
    return True


class Loop(uvloop.Loop):
    async def create_connection(  # type: ignore[override]
        self, protocol_factory: Callable[[], asyncio.BaseProtocol], host: str | None = None,
        port: int | None = None, **kwargs: Any,
    ) -> tuple[asyncio.Transport, asyncio.BaseProtocol]:  # fmt: skip
        """uvloop's ``create_connection``, with a host name resolved here first (see the module
        doc); addresses are tried in the order ``getaddrinfo`` gives them."""
        if host is None or kwargs.get("sock") is not None or _numeric(host):
            return await super().create_connection(protocol_factory, host, port, **kwargs)
        infos = await self.getaddrinfo(
            host, port, family=kwargs.pop("family", 0), type=socket.SOCK_STREAM,
            proto=kwargs.pop("proto", 0), flags=kwargs.pop("flags", 0),
        )  # fmt: skip
        if not infos:
            raise OSError(f"getaddrinfo({host!r}) returned no address")
        if kwargs.get("ssl") and kwargs.get("server_hostname") is None:
            kwargs["server_hostname"] = host  # the name the certificate is checked against
        errors: list[OSError] = []
        for family, _, proto, _, address in infos:
            try:
                return await super().create_connection(
                    protocol_factory, address[0], address[1], family=family, proto=proto, **kwargs
                )
            except OSError as exc:
                errors.append(exc)
        if len(errors) == 1:
            raise errors[0]
        raise OSError(f"connecting to {host!r} failed: {'; '.join(map(str, errors))}")


# uvicorn calls a custom loop setting's object to make the loop: the class itself.
UVICORN_LOOP = f"{__name__}:{Loop.__name__}"
