"""What one search work item computes before its step statement (``WorkRepository.step``)."""

import uuid
from typing import Any

import orjson

from shared.events.catalogue import spec_for
from shared.events.outbox import WrongProducer
from shared.models.enums import Service

from ..providers import SearchPage

SERVICE = Service.scraping
MAX_PAGES_PER_CHAIN = 50
MAX_BARREN_PAGES = 3  # consecutive pages that add nobody new end a chain


def next_states(state: dict[str, Any], page: SearchPage) -> tuple[dict, dict]:
    """The chain's state after ``page``: if it added creators, and if it added none."""
    n = state["page"] + 1
    ended = page.exhausted or n >= MAX_PAGES_PER_CHAIN
    barren = state["barren"] + 1
    return (
        {**state, "page": n, "cursor": page.next_cursor, "barren": 0, "done": ended},
        {**state, "page": n, "cursor": page.next_cursor, "barren": barren,
         "done": ended or barren >= MAX_BARREN_PAGES},
    )  # fmt: skip


def outbox_row(name: str, type: str, data: Any) -> dict[str, Any]:
    """An outbox row's parameters for ``WorkRepository.step``, its payload checked by the
    catalogue (the step fills in the counts only it knows)."""
    spec = spec_for(type, 1)
    if spec.producer != SERVICE:
        raise WrongProducer(f"{spec.subject} is produced by {spec.producer}, not {SERVICE}")
    return {
        f"{name}_id": uuid.uuid4(),
        f"{name}_type": type,
        f"{name}_data": orjson.dumps(spec.validate(data)).decode(),
    }
