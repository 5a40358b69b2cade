"""The event envelope and the naming of subjects and streams under ``SCOUT_NATS_PREFIX``.

Naming scheme (one rule each, so a test run's prefix isolates everything it touches):
- subject = ``<prefix>.<type>.v<version>`` (``t1ab.identity.user.created.v1``); no prefix → no dot;
- stream  = ``<prefix>_<NAME>`` (``t1ab_IDENTITY``): stream names may not contain dots;
- durable consumer names live inside a (prefixed) stream, so they carry no prefix.
"""

import re
import uuid
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

import orjson
from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from .catalogue import Payload

_PREFIX_RE = re.compile(r"^[A-Za-z0-9_-]*$")


def check_prefix(prefix: str) -> str:
    """A prefix must be one subject token and a valid stream-name part."""
    if not _PREFIX_RE.match(prefix):
        raise ValueError(f"SCOUT_NATS_PREFIX must match [A-Za-z0-9_-]*, got {prefix!r}")
    return prefix


def event_subject(type: str, version: int) -> str:
    """The unprefixed subject of an event type: ``<type>.v<version>``."""
    return f"{type}.v{version}"


def prefixed(subject: str, prefix: str) -> str:
    """Apply the prefix to a subject (or a subject filter such as ``identity.user.>``)."""
    return f"{check_prefix(prefix)}.{subject}" if prefix else subject


def unprefixed(subject: str, prefix: str) -> str:
    """Strip the prefix from a received subject (the inverse of :func:`prefixed`)."""
    return subject[len(prefix) + 1 :] if prefix and subject.startswith(prefix + ".") else subject


def stream_name(name: str, prefix: str) -> str:
    """Apply the prefix to a stream name: ``IDENTITY`` → ``t1ab_IDENTITY``."""
    return f"{check_prefix(prefix)}_{name}" if prefix else name


class Aggregate(BaseModel):
    """What the event is about: ``{type: "user", id: "<uuid>"}``."""

    model_config = ConfigDict(frozen=True)

    type: str
    id: str


class Envelope(BaseModel):
    """One event as it travels on NATS: the fact (``data``) plus who, what, when and why."""

    model_config = ConfigDict(frozen=True)

    id: uuid.UUID
    type: str = Field(min_length=3)
    version: int = Field(ge=1)
    source: str
    occurred_at: datetime
    aggregate: Aggregate
    correlation_id: str | None = None
    causation_id: str | None = None
    data: dict[str, Any]

    @property
    def subject(self) -> str:
        """The unprefixed subject, ``<type>.v<version>``."""
        return event_subject(self.type, self.version)

    @cached_property
    def payload(self) -> "Payload":
        """``data`` as the catalogue's typed model (tolerant: unknown fields are ignored)."""
        from .catalogue import spec_for  # the catalogue imports this module

        return spec_for(self.type, self.version).parse(self.data)

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json"))

    @classmethod
    def from_json(cls, raw: bytes | str) -> "Envelope":
        return cls.model_validate_json(raw)
