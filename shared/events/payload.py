"""The base of every event and request/reply payload."""

from pydantic import BaseModel, ConfigDict


class Payload(BaseModel):
    """Base of every event payload: immutable, and strict about unknown fields when produced."""

    model_config = ConfigDict(extra="forbid", frozen=True)
