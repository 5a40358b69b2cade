"""The harness finds real servers or fails loudly; it never skips silently."""

import pytest

from tooling.infra import InfrastructureUnavailable, resolve_nats, resolve_postgres

CLOSED = "127.0.0.1:1"


def test_a_given_database_url_that_does_not_answer_is_an_error_not_a_fallback():
    with pytest.raises(InfrastructureUnavailable, match="DATABASE_URL is set"):
        resolve_postgres(env_url=f"postgresql://postgres@{CLOSED}/x")


def test_no_postgres_anywhere_fails_with_every_attempt_listed():
    with pytest.raises(InfrastructureUnavailable) as info:
        resolve_postgres(
            env_url="",
            local_url=f"postgresql://postgres@{CLOSED}/x",
            try_docker=False,
            try_embedded=False,
        )
    message = str(info.value)
    assert "No Postgres available" in message and CLOSED in message and "DATABASE_URL" in message


def test_no_nats_anywhere_fails_with_every_attempt_listed():
    with pytest.raises(InfrastructureUnavailable) as info:
        resolve_nats(env_url="", local_url=f"nats://{CLOSED}", try_docker=False, try_embedded=False)
    assert "NATS_URL" in str(info.value) and CLOSED in str(info.value)


def test_given_urls_are_used_as_they_are(database_url, nats_url):
    assert resolve_postgres(env_url=database_url).source == "env"
    assert resolve_nats(env_url=nats_url).source == "env"
