"""While Postgres is away, an API answers 503 at once, and ``/readyz`` follows the heartbeat.

The app reaches the test database through a TCP proxy: ``stop()`` is Postgres going away
(connections dropped, new ones refused), ``freeze()`` a server that stops answering on the
connections it has (nothing errors; everything waits).
"""

import asyncio
import contextlib
import uuid

import pytest
import sqlalchemy as sa
from fastapi import APIRouter

from shared.db import make_engine
from shared.events.failures import is_database_unavailable
from shared.events.health import DatabaseHealth, Heartbeat
from shared.models import User
from shared.ratelimit import rate_limit
from shared.web import SessionDep, create_app

from .support.http import serving
from .support.proxy import TcpProxy
from .support.wait import eventually

GATE_DETAIL = "The database is unreachable; try again shortly."


class FreezableProxy(TcpProxy):
    """A :class:`TcpProxy` that can also stop forwarding bytes without closing anything."""

    def __init__(self, target: str, default_port: int) -> None:
        super().__init__(target, default_port)
        self.flowing = asyncio.Event()
        self.flowing.set()

    def freeze(self) -> None:
        self.flowing.clear()

    def thaw(self) -> None:
        self.flowing.set()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    await self.flowing.wait()
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers -= {writer, up_writer}


@pytest.fixture
async def proxy(database_url: str):
    proxy = FreezableProxy(database_url, default_port=5432)
    await proxy.start()
    yield proxy
    proxy.thaw()
    await proxy.stop()


def users_router() -> APIRouter:
    router = APIRouter()

    @router.post("/users/{clerk}")
    async def create_user(clerk: str, session: SessionDep) -> dict:
        session.add(User(user_id=clerk))
        await session.flush()
        return {"created": clerk}

    @router.post(
        "/limited", dependencies=[rate_limit("test.limited", "rate_limit_job_creates_per_minute")]
    )
    async def limited() -> dict:
        """Reaches the database only through its rate limit (a statement of its own)."""
        return {"ok": True}

    @router.get("/boom")
    async def boom() -> dict:
        raise RuntimeError("a bug, not an outage")

    return router


async def test_requests_answer_503_from_the_gate_while_the_database_is_away(
    service_settings, database_url, proxy: FreezableProxy, signing_keys
):
    settings = service_settings.model_copy(update={"database_url": proxy.url_for(database_url)})
    app = create_app("identity", routers=[users_router()], settings=settings)
    async with serving(app) as client:
        assert (await client.post(f"/users/user_{uuid.uuid4().hex[:12]}")).status_code == 200
        assert (await client.get("/boom")).status_code == 500
        auth = {"authorization": f"Bearer {signing_keys.token('user_gate_limited')}"}
        assert (await client.post("/limited", headers=auth)).status_code == 200
        assert app.state.db_health.healthy  # a bug is not an outage

        await proxy.stop()

        async def gate_closed() -> bool:  # the heartbeat or the first request finds out
            await client.post(f"/users/user_{uuid.uuid4().hex[:12]}")
            return not app.state.db_health.healthy

        await eventually(gate_closed, within=10)
        answers = await asyncio.gather(
            *(client.post(f"/users/user_{uuid.uuid4().hex[:12]}") for _ in range(20))
        )
        # Every one answered by the gate, none by a failed connection attempt.
        assert {(r.status_code, r.json()["detail"]) for r in answers} == {(503, GATE_DETAIL)}
        assert {r.headers["retry-after"] for r in answers} == {"1"}
        limited = await client.post("/limited", headers=auth)  # its own statement, gated too
        assert (limited.status_code, limited.json()["detail"]) == (503, GATE_DETAIL)
        ready = await client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["postgres"] is False

        await proxy.start()

        async def gate_open() -> bool:  # the gate's probe found the database
            return app.state.db_health.healthy

        await eventually(gate_open, within=15)
        # The very first requests succeed: the pool's connections from before were let go.
        for _ in range(3):
            assert (await client.post(f"/users/user_{uuid.uuid4().hex[:12]}")).status_code == 200
        assert app.state.db_health.healthy and app.state.db_health.outages == 1

        async def ready() -> bool:
            return (await client.get("/readyz")).status_code == 200

        await eventually(ready, within=5)


async def test_the_heartbeat_goes_stale_when_the_database_stops_answering_without_an_error(
    database_url: str, proxy: FreezableProxy
):
    engine = make_engine(proxy.url_for(database_url), pool_size=1, connect_timeout=2,
                         statement_timeout=5, pool_timeout=2)  # fmt: skip
    health = DatabaseHealth(engine, name="heartbeat-test", probe_max=0.2)
    heartbeat = Heartbeat(health, every=0.05, fresh_for=0.5)
    await heartbeat.start()
    try:
        assert heartbeat.fresh()
        proxy.freeze()  # the beat in flight waits; nothing fails

        async def stale() -> bool:
            return not heartbeat.fresh()

        await eventually(stale, within=5)
        assert health.healthy  # slow is not gone: the gate stays open
        proxy.thaw()

        async def fresh() -> bool:
            return heartbeat.fresh()

        await eventually(fresh, within=5)
        await proxy.stop()  # gone: the next beat fails and closes the gate
        await eventually(stale, within=5)

        async def gate_closed() -> bool:
            return not health.healthy

        await eventually(gate_closed, within=5)
        await proxy.start()
        await eventually(fresh, within=10)  # the gate's probe reopened it, the beats resumed
    finally:
        await heartbeat.stop()
        health.close()
        await engine.dispose()


async def test_a_connect_that_gets_no_answer_gives_up_after_the_connect_timeout():
    """libpq's own timeout is whole seconds per address (and never covers the host name's
    lookup); the engine bounds the whole connect by ``connect_timeout``, as an outage."""
    accepted: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)  # accept, then never say a word

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    engine = make_engine(f"postgresql://scout@127.0.0.1:{port}/scout", connect_timeout=0.3,
                         statement_timeout=5, pool_timeout=2)  # fmt: skip
    try:
        with pytest.raises(sa.exc.OperationalError) as failure:
            async with engine.connect():
                pass
        assert "name lookup included" in str(failure.value)  # ours, not libpq's (>= 2 s)
        assert is_database_unavailable(failure.value)  # closes a gate like any outage
        assert accepted  # it did reach the silent server
    finally:
        await engine.dispose()
        server.close()
        for writer in accepted:
            writer.close()
