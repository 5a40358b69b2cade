"""NATS permissions per service (deploy/k8s/nats/auth.conf): the real services work under them,
and each service is refused another service's subjects."""

import os
import uuid
from pathlib import Path

import nats
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from shared.events import rpc
from shared.events.outbox import record_event
from shared.events.rpc import DependencyUnavailable
from shared.models import UserUsage
from shared.models.enums import Service
from tooling.nats_auth import OPS_USER, password_variable, render

from ..factories import make_user
from ..support.procs import NatsServer
from ..support.services import running_worker
from ..support.wait import eventually

AUTH_CONF = Path(__file__).parents[2] / "deploy" / "k8s" / "nats" / "auth.conf"
USERS = [*Service, OPS_USER]


def test_the_deployed_permissions_are_the_generated_ones():
    assert AUTH_CONF.read_text() == render(), "run: scout nats-auth > deploy/k8s/nats/auth.conf"


@pytest.fixture
async def secured_nats(tmp_path, nats_prefix):
    """A private nats-server with JetStream and the generated users (for this test's prefix)."""
    # NATS parses a variable's value as a config value: a password must start with a letter.
    passwords = {user: f"pw{uuid.uuid4().hex}" for user in USERS}
    server = NatsServer(tmp_path / "js", tmp_path)
    conf = tmp_path / "nats.conf"
    conf.write_text(
        f"listen: 127.0.0.1:{server.port}\n"
        f"jetstream {{ store_dir: {tmp_path / 'js'} }}\n" + render(nats_prefix)
    )
    server.config = conf
    server.proc.env = {**os.environ, **{password_variable(u): p for u, p in passwords.items()}}
    await server.start()

    def url(user: str) -> str:
        return f"nats://{user}:{passwords[user]}@127.0.0.1:{server.port}"

    yield url
    server.stop()


async def _connect(url: str, errors: list[str]):
    async def on_error(exc: Exception) -> None:
        errors.append(str(exc))

    return await nats.connect(url, error_cb=on_error, max_reconnect_attempts=0)


async def test_services_run_under_their_permissions(secured_nats, service_settings, committed):
    """Identity's relay publishes, billing consumes and answers questions, scraping asks."""
    settings = {
        s: service_settings.model_copy(update={"nats_url": secured_nats(s)}) for s in Service
    }
    async with AsyncSession(committed) as session, session.begin():
        user = await make_user(session, children=False)
        user_id = user.id
        await record_event(
            session, service="identity", type="identity.user.created",
            aggregate_type="user", aggregate_id=user_id,
            data={"user_id": user_id, "clerk_user_id": user.user_id}, user_id=user_id,
        )  # fmt: skip
    async with (
        running_worker("identity", settings["identity"]),
        running_worker("billing", settings["billing"]),
    ):

        async def provisioned() -> bool:
            async with committed.connect() as conn:
                q = (
                    sa.select(sa.func.count())
                    .select_from(UserUsage)
                    .where(UserUsage.user_id == user_id)
                )
                return await conn.scalar(q) == 1

        await eventually(provisioned, within=20)
        errors: list[str] = []
        nc = await _connect(secured_nats("scraping"), errors)
        try:
            reply = await rpc.request(
                nc, "billing.usage.reserve",
                {"user_id": user_id, "resource": "creators", "amount": 1, "idempotency_key": "k"},
                prefix=service_settings.scout_nats_prefix, timeout=5,
            )  # fmt: skip
        finally:
            await nc.close()
        assert reply.allowed is False and reply.code == "no_active_plan"  # no plan
        assert errors == []


async def test_a_service_cannot_use_another_services_subjects(secured_nats, nats_prefix):
    errors: list[str] = []
    campaign = await _connect(secured_nats("campaign"), errors)
    identity = await _connect(secured_nats("identity"), errors)
    try:
        # Forging billing's events, and listening in on billing's questions.
        await campaign.publish(f"{nats_prefix}.billing.subscription.changed.v1", b"{}")
        await campaign.subscribe(f"{nats_prefix}.billing.usage.reserve")
        await campaign.flush()
        # Identity never asks billing for quota, so it may not.
        with pytest.raises(DependencyUnavailable):
            await rpc.request(
                identity, "billing.usage.reserve", {"user_id": str(uuid.uuid4()),
                "resource": "campaigns", "amount": 1, "idempotency_key": "x"},
                prefix=nats_prefix, timeout=1,
            )  # fmt: skip

        async def all_refused() -> bool:  # the server reports violations asynchronously
            return "\n".join(errors).lower().count("permissions violation") >= 3

        await eventually(all_refused, within=5)
    finally:
        await campaign.close()
        await identity.close()
    text = "\n".join(errors).lower()
    assert f'publish to "{nats_prefix}.billing.subscription.changed.v1"' in text, errors
    assert f'subscription to "{nats_prefix}.billing.usage.reserve"' in text, errors
