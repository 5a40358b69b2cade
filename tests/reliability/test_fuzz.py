"""Hostile input: schemathesis against each service's OpenAPI — no 5xx, every error has a code
that its operation documents.

Each API runs on a real socket with the real billing worker behind it (quota questions are
answered), and schemathesis generates requests from the published schema, authenticated as an
ordinary user on an active plan, plus malformed ones in its negative phases.
"""

import asyncio
import contextlib
import os
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from shared.models import UserSubscription
from shared.worker import SERVICES

from ..factories import make_user
from ..support.fake_stripe import fake_stripe
from ..support.services import running_api, running_worker

SCHEMATHESIS = str(Path(sys.executable).with_name("schemathesis"))
EXAMPLES = os.environ.get("SCOUT_FUZZ_EXAMPLES", "15")


@pytest.fixture
async def stack():
    async with contextlib.AsyncExitStack() as s:
        yield s


@pytest.mark.parametrize("service", SERVICES)
async def test_no_server_errors_and_every_error_has_a_code(
    service, service_settings, signing_keys, committed, tmp_path, stack
):
    token = signing_keys.token("user_fuzz_caller")
    # Stripe (a third party) is the local fake, so checkout exercises the real client code.
    stripe = await stack.enter_async_context(fake_stripe())
    settings = service_settings.model_copy(
        update={"stripe_secret_key": "sk_test_fuzz", "stripe_api_base": stripe.url}
    )
    async with AsyncSession(committed) as session, session.begin():
        user = await make_user(session, user_id="user_fuzz_caller")
        await session.execute(
            sa.update(UserSubscription)
            .where(UserSubscription.user_id == user.id)
            .values(current_plan="pro", subscription_status="active")
        )
    async with (
        running_worker("billing", settings),
        running_api(service, settings) as client,
    ):
        env = {
            **os.environ,
            "SCHEMATHESIS_HOOKS": "tests.reliability.st_hooks",
            "PYTHONPATH": str(Path(__file__).parents[2]),
        }
        proc = await asyncio.create_subprocess_exec(
            SCHEMATHESIS, "run", f"{client.base_url}/openapi.json",
            "--checks", "not_a_server_error,error_has_a_code,error_is_documented",
            "--max-examples", EXAMPLES,
            "--seed", "20261125",
            "--header", f"Authorization: Bearer {token}",
            "--suppress-health-check", "all",
            "--report-dir", str(tmp_path),
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        out, _ = await asyncio.wait_for(proc.communicate(), timeout=600)
    text = out.decode(errors="replace")
    assert proc.returncode == 0, text[-6000:]
    print(text[text.find("SUMMARY") :])  # requests generated and checks passed, with -s
