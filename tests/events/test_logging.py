"""Structured logs carry the correlation id bound for the request or message being handled."""

import io
import json
import logging

import pytest

from shared.context import bound
from shared.logging import configure_logging, set_level


@pytest.fixture(autouse=True)
def _restore_root_level():
    level = logging.getLogger().level
    yield
    logging.getLogger().setLevel(level)


def test_json_records_carry_correlation_ids_and_extra_context():
    out = io.StringIO()
    handler = configure_logging("INFO", "json", service="billing", stream=out)
    try:
        with bound("corr-7", "evt-3"):
            logging.getLogger("scout.test").info(
                "billing.webhook.applied", extra={"event_id": "e1"}
            )
        logging.getLogger("scout.test").debug("hidden at INFO")
    finally:
        logging.getLogger().removeHandler(handler)
    [line] = out.getvalue().splitlines()
    record = json.loads(line)
    assert record["event"] == "billing.webhook.applied" and record["event_id"] == "e1"
    assert (record["correlation_id"], record["causation_id"]) == ("corr-7", "evt-3")
    assert record["service"] == "billing" and record["level"] == "INFO"


def test_console_lines_are_readable_and_levels_change_at_runtime():
    out = io.StringIO()
    handler = configure_logging("INFO", "console", stream=out)
    log = logging.getLogger("scout.test.console")
    try:
        set_level("scout.test.console", "WARNING")
        log.info("dropped")
        with bound("corr-9"):
            log.warning("events.relay.retry", extra={"delay_s": 0.2})
    finally:
        set_level("scout.test.console", "NOTSET")
        logging.getLogger().removeHandler(handler)
    [line] = out.getvalue().splitlines()
    assert "WARNING" in line and "events.relay.retry" in line
    assert "delay_s=0.2" in line and "corr=corr-9" in line
