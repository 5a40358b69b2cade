"""The APIs' event loop (``shared.web.eventloop``): uvloop whose cancelled connects leave nothing.

Each test runs its own coroutine on a fresh :class:`Loop`, with an exception handler that
records what asyncio would have logged.
"""

import asyncio
import gc
from urllib.parse import urlsplit

import pytest
import uvicorn

from shared.events.streams import connect
from shared.web.eventloop import UVICORN_LOOP, Loop

UNRESOLVABLE = "no-such-host.invalid"


def run_on_loop(main) -> list[str]:
    """Run ``main()`` on a fresh :class:`Loop`; the messages the loop's handler got."""
    loop = Loop()
    logged: list[str] = []
    loop.set_exception_handler(lambda _, context: logged.append(context["message"]))
    try:
        loop.run_until_complete(main())
        gc.collect()  # an unretrieved exception is reported when its future is collected
        loop.run_until_complete(asyncio.sleep(0.05))
    finally:
        loop.close()
    return logged


def test_a_connect_cancelled_while_the_name_resolves_leaves_no_unretrieved_exception():
    async def main() -> None:
        for _ in range(20):
            attempt = asyncio.ensure_future(asyncio.open_connection(UNRESOLVABLE, 4222))
            await asyncio.sleep(0)  # the lookup has started
            attempt.cancel()
            with pytest.raises(asyncio.CancelledError):
                await attempt
        await asyncio.sleep(0.2)  # the lookups finish (and fail) after their callers left

    assert run_on_loop(main) == []


def test_an_unresolvable_name_still_fails_with_the_lookup_error():
    async def main() -> None:
        with pytest.raises(OSError) as failure:
            await asyncio.open_connection(UNRESOLVABLE, 4222)
        assert "name" in str(failure.value).lower() or failure.value.errno is not None

    assert run_on_loop(main) == []


def test_names_and_addresses_connect_as_before():
    async def main() -> None:
        served: list[bytes] = []

        async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            served.append(await reader.readline())
            writer.close()

        server = await asyncio.start_server(echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            for host in ("localhost", "127.0.0.1"):
                reader, writer = await asyncio.open_connection(host, port)
                writer.write(f"{host}\n".encode())
                await writer.drain()
                assert await reader.read() == b""
                writer.close()
        assert served == [b"localhost\n", b"127.0.0.1\n"]

    assert run_on_loop(main) == []


def test_nats_connects_by_name_on_this_loop(nats_url: str):
    url = urlsplit(nats_url)
    if url.hostname not in ("127.0.0.1", "localhost"):
        pytest.skip("NATS is not on this machine")
    by_name = url._replace(netloc=f"localhost:{url.port}").geturl()

    async def main() -> None:
        nc = await connect(by_name, name="scout-tests-eventloop")
        try:
            assert nc.is_connected
            await nc.flush(timeout=2)
        finally:
            await nc.close()

    assert run_on_loop(main) == []


def test_uvicorn_runs_the_apis_on_this_loop():
    """``scout api`` passes :data:`UVICORN_LOOP`; uvicorn makes its loop from it."""
    factory = uvicorn.Config(
        "services.identity.api:create_app", loop=UVICORN_LOOP
    ).get_loop_factory()
    loop = factory()
    try:
        assert isinstance(loop, Loop)
        loop.set_debug(False)  # what asyncio.Runner does first
        assert loop.run_until_complete(asyncio.sleep(0, "ran")) == "ran"
    finally:
        loop.close()
