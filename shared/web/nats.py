"""The API process's NATS connection: connected in the background, never blocking start-up."""

import asyncio
from contextlib import suppress

from nats.aio.client import Client as NATS

from shared.events.streams import connect as connect_nats


class NatsLink:
    """A NATS connection that keeps trying in the background when the server is down."""

    def __init__(self, url: str, name: str) -> None:
        self.url, self.name = url, name
        self.nc: NATS | None = None
        self._task: asyncio.Task | None = None

    async def start(self, wait: float = 2.0) -> None:
        """Connect in the background; wait briefly so a healthy start is ready at once.

        nats-py's first connect with ``max_reconnect_attempts=-1`` retries forever, which is
        what we want for a service, but it must never block start-up or shutdown.
        """
        self._task = asyncio.create_task(self._connect())
        await asyncio.wait({self._task}, timeout=wait)

    async def _connect(self) -> None:
        self.nc = await connect_nats(self.url, name=self.name)

    @property
    def connected(self) -> bool:
        return self.nc is not None and self.nc.is_connected

    async def close(self) -> None:
        if self._task and not self._task.done():
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
        if self.nc is not None:
            with suppress(Exception):
                await self.nc.drain()
