"""Serve an ASGI app on a real socket inside the test's event loop (real HTTP, real concurrency)."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import uvicorn

from tooling.embedded import free_port

__all__ = ["free_port", "serving"]


@asynccontextmanager
async def serving(app, *, port: int | None = None) -> AsyncIterator[httpx.AsyncClient]:
    """Run ``app`` under uvicorn (lifespan included) and yield a client pointed at it."""
    port = port or free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(500):
            if server.started:
                break
            if task.done():
                task.result()  # surfaces a start-up failure
            await asyncio.sleep(0.01)
        else:
            raise TimeoutError("server did not start")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            yield client
    finally:
        server.should_exit = True
        await task
