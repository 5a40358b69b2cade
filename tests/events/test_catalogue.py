"""Envelope, catalogue and stream naming: every contracted subject typed, prefixes isolate all."""

import uuid
from datetime import UTC, datetime

import pytest
from nats.js import JetStreamContext
from nats.js.api import RetentionPolicy
from pydantic import ValidationError

from shared.events.catalogue import CATALOGUE, RPC, UnknownEvent, spec_for
from shared.events.envelope import Envelope, prefixed, stream_name, unprefixed
from shared.events.streams import STREAMS, ensure_streams

CONTRACT_SUBJECTS = {
    "identity.user.created.v1",
    "identity.user.updated.v1",
    "identity.user.deleted.v1",
    "identity.onboarding.step_changed.v1",
    "billing.subscription.changed.v1",
    "billing.trial.started.v1",
    "billing.trial.expired.v1",
    "billing.trial.converted.v1",
    "campaign.campaign.created.v1",
    "campaign.campaign.updated.v1",
    "campaign.campaign.deleted.v1",
    "scraping.job.created.v1",
    "scraping.job.progressed.v1",
    "scraping.job.completed.v1",
    "scraping.job.failed.v1",
    "scraping.job.timed_out.v1",
    "scraping.job.cancelled.v1",
    "platform.config.changed.v1",
    "platform.logging.changed.v1",
}


def _matches(filter_: str, subject: str) -> bool:
    f, s = filter_.split("."), subject.split(".")
    for i, token in enumerate(f):
        if token == ">":
            return len(s) > i
        if i >= len(s) or (token != "*" and token != s[i]):
            return False
    return len(f) == len(s)


def test_every_spec_subject_has_a_typed_payload_and_a_producer_stream():
    assert set(CATALOGUE) >= CONTRACT_SUBJECTS
    for subject, spec in CATALOGUE.items():
        stream = STREAMS[spec.stream]
        assert any(_matches(f, subject) for f in stream.subjects), subject
        assert spec.stream.startswith(spec.producer.upper()), subject
    assert {
        "billing.usage.reserve",
        "billing.usage.release",
        "billing.usage.release_key",
        "scraping.results.creators",
        "scraping.enrichments.start",
    } == set(RPC)


def test_request_reply_subjects_are_not_captured_by_any_stream():
    # A stream listening on billing.> would answer billing.usage.reserve with a PubAck.
    for subject in RPC:
        for stream in STREAMS.values():
            assert not any(_matches(f, subject) for f in stream.subjects), (subject, stream)


def test_prefix_applies_to_subjects_and_stream_names():
    assert prefixed("identity.user.created.v1", "t1ab") == "t1ab.identity.user.created.v1"
    assert unprefixed("t1ab.identity.user.created.v1", "t1ab") == "identity.user.created.v1"
    assert stream_name("IDENTITY", "t1ab") == "t1ab_IDENTITY"
    assert prefixed("identity.user.created.v1", "") == "identity.user.created.v1"
    assert stream_name("IDENTITY", "") == "IDENTITY"
    with pytest.raises(ValueError, match="SCOUT_NATS_PREFIX"):
        prefixed("x.y", "bad.prefix")


def test_producers_validate_strictly_and_consumers_read_tolerantly():
    spec = spec_for("identity.user.created")
    user = {"user_id": str(uuid.uuid4()), "clerk_user_id": "user_1"}
    with pytest.raises(ValidationError):
        spec.validate({**user, "emial": "typo@example.com"})
    with pytest.raises(ValidationError):
        spec.validate({"clerk_user_id": "user_1"})
    assert spec.parse({**user, "added_in_a_later_release": 1}).clerk_user_id == "user_1"
    with pytest.raises(UnknownEvent):
        spec_for("identity.user.created", version=9)


def test_envelope_round_trips_and_exposes_its_typed_payload():
    envelope = Envelope(
        id=uuid.uuid4(),
        type="platform.logging.changed",
        version=1,
        source="identity",
        occurred_at=datetime.now(UTC),
        aggregate={"type": "logger", "id": "billing/root"},
        correlation_id="c-1",
        causation_id=None,
        data={"service": "billing", "logger": "root", "level": "DEBUG"},
    )
    again = Envelope.from_json(envelope.to_json())
    assert again == envelope
    assert again.subject == "platform.logging.changed.v1"
    assert again.payload.level == "DEBUG"


async def test_streams_are_provisioned_idempotently_with_dedupe_and_a_work_queue(
    js: JetStreamContext, nats_prefix: str
):
    assert await ensure_streams(js, nats_prefix) == [
        stream_name(name, nats_prefix) for name in STREAMS
    ]
    work = await js.stream_info(stream_name("SCRAPING_WORK", nats_prefix))
    assert work.config.retention == RetentionPolicy.WORK_QUEUE
    identity = await js.stream_info(stream_name("IDENTITY", nats_prefix))
    assert f"{nats_prefix}.platform.config.>" in identity.config.subjects
    assert identity.config.duplicate_window == 120.0

    subject = prefixed("platform.config.changed.v1", nats_prefix)
    first = await js.publish(subject, b"{}", headers={"Nats-Msg-Id": "same"})
    second = await js.publish(subject, b"{}", headers={"Nats-Msg-Id": "same"})
    assert (first.seq, first.duplicate) == (second.seq, None) and second.duplicate is True
