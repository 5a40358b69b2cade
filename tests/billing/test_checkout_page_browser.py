"""The local checkout page in a real browser: open ``checkout_url``, click "Complete payment",
and the user's plan changes. Headless Chromium, network cut off but for 127.0.0.1."""

import pytest

from ..support.browser import CHROMIUM, Browser
from ..support.services import running_api
from .conftest import billing_user

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium; .ci/run does)"
)


async def test_clicking_complete_payment_in_chromium_puts_the_user_on_the_plan(
    committed, service_settings, signing_keys
):
    settings = service_settings.model_copy(update={"scout_env": "development"})
    user = await billing_user(committed)
    auth = {"Authorization": f"Bearer {signing_keys.token(user.user_id)}"}
    async with running_api("billing", settings) as client:
        checkout = await client.post(
            "/billing/checkout", json={"plan": "growth", "interval": "monthly"}, headers=auth
        )
        assert checkout.status_code == 200, checkout.text
        async with Browser() as browser:
            await browser.goto(checkout.json()["checkout_url"])
            shown = await browser.text()
            for expected in ("Subscribe to Growth", "$199.00", "/ month", "7-day free trial"):
                assert expected in shown, shown
            before = (await client.get("/billing/status", headers=auth)).json()
            await browser.click("#complete")
            done = await browser.text()
        after = (await client.get("/billing/status", headers=auth)).json()
    assert before["plan"] is None
    assert "Payment complete" in done and "Growth" in done, done
    assert (after["plan"], after["subscription_status"], after["billing_interval"]) == (
        "growth",
        "trialing",
        "monthly",
    )
