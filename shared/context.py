"""Correlation and causation ids for the current request or message (contextvars).

HTTP middleware binds them from ``X-Correlation-ID``; the event consumer binds them from the
envelope (causation = the consumed event id); ``record_event`` and the log formatter read them.
"""

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

correlation_id_var: ContextVar[str | None] = ContextVar("correlation_id", default=None)
causation_id_var: ContextVar[str | None] = ContextVar("causation_id", default=None)


def new_id() -> str:
    return str(uuid.uuid4())


def current_correlation_id() -> str | None:
    return correlation_id_var.get()


def current_causation_id() -> str | None:
    return causation_id_var.get()


@contextmanager
def bound(correlation_id: str | None, causation_id: str | None = None) -> Iterator[None]:
    """Bind the ids for the duration of a block (and every task it awaits)."""
    t1 = correlation_id_var.set(correlation_id)
    t2 = causation_id_var.set(causation_id)
    try:
        yield
    finally:
        causation_id_var.reset(t2)
        correlation_id_var.reset(t1)
