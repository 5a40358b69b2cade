"""Hot runtime settings in every process: typed config values and log levels, no restart.

Identity owns ``system_configurations`` and ``logging_configurations`` and announces each change
as ``platform.config.changed.v1`` / ``platform.logging.changed.v1``. Every API and worker
process runs one :class:`RuntimeSync`, which

- loads both tables when it starts (a process started after a change still gets it),
- subscribes to the two subjects with a plain core-NATS subscription, so EVERY process sees
  every change within milliseconds of the relay publishing it, and
- re-reads both tables every ``refresh_interval`` seconds as a backstop for changes published
  while this process was disconnected.

Why not a durable JetStream consumer: all workers of a service share one durable (queue
semantics), so only one of them would get each change, and an API runs no consumers at all.
A change must reach each process, which is what a core subscription gives; the database stays
the source of truth, so a missed message is repaired by the next refresh.

Config values are read with :func:`config_value` (a per-process cache, never a DB round trip).
"""

import asyncio
import contextlib
import json
import logging
import math
import re
import time
import weakref
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.events.envelope import Envelope, prefixed
from shared.logging import set_level
from shared.models import LoggingConfiguration, SystemConfiguration
from shared.models.enums import ConfigValueType, LogLevel

log = logging.getLogger("scout.runtime")

CONFIG_SUBJECT = "platform.config.changed.v1"
LOGGING_SUBJECT = "platform.logging.changed.v1"
ALL_SERVICES = "*"
DEFAULT_REFRESH_SECONDS = 30.0

_configs = SystemConfiguration.__table__
_levels = LoggingConfiguration.__table__

# --- typed values ------------------------------------------------------------------------------

_DURATION = re.compile(r"^(\d+)(ms|s|m|h)$")
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}


class InvalidConfigValue(ValueError):
    """A value that does not fit its ``value_type``; the message says why, for a 4xx detail."""


def normalise_value(value_type: str, value: Any) -> str:
    """The canonical text stored for ``value`` of ``value_type`` (InvalidConfigValue if it is not one).

    Accepts the natural JSON form (``5``, ``true``, ``{"a": 1}``) or its text (``"5"``, ``"true"``).
    A number keeps its fraction (``0.1`` stays ``0.1``): truncating to an integer would turn
    a setting of 0.1 into 0.
    """
    match value_type:
        case ConfigValueType.number:
            if isinstance(value, bool):
                raise InvalidConfigValue("a number is expected, not a boolean")
            if isinstance(value, str):
                try:
                    value = float(value) if any(c in value for c in ".eE") else int(value)
                except ValueError:
                    raise InvalidConfigValue(f"{value!r} is not a number") from None
            if not isinstance(value, int | float) or not math.isfinite(value):
                raise InvalidConfigValue("a finite number is expected")
            if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
                value = int(value)
            return str(value)
        case ConfigValueType.duration:
            if not isinstance(value, str) or not _DURATION.match(value.strip()):
                raise InvalidConfigValue("a duration like 500ms, 30s, 5m or 2h is expected")
            return value.strip()
        case ConfigValueType.boolean:
            if isinstance(value, bool):
                return "true" if value else "false"
            if isinstance(value, str) and value.strip().lower() in ("true", "false"):
                return value.strip().lower()
            raise InvalidConfigValue("true or false is expected")
        case ConfigValueType.string:
            if not isinstance(value, str):
                raise InvalidConfigValue("a string is expected")
            return value
        case ConfigValueType.json:
            return json.dumps(value, separators=(",", ":"), sort_keys=True)
    raise InvalidConfigValue(f"unknown value type {value_type!r}")


def parse_value(value_type: str, text: str) -> Any:
    """The typed value of stored ``text``: int/float, timedelta, bool, str or any JSON value."""
    match value_type:
        case ConfigValueType.number:
            try:
                return int(text)
            except ValueError:
                return float(text)
        case ConfigValueType.duration:
            match = _DURATION.match(text)
            if not match:
                raise InvalidConfigValue(f"{text!r} is not a duration")
            return timedelta(seconds=int(match[1]) * _DURATION_UNITS[match[2]])
        case ConfigValueType.boolean:
            return text == "true"
        case ConfigValueType.string:
            return text
        case ConfigValueType.json:
            return json.loads(text)
    raise InvalidConfigValue(f"unknown value type {value_type!r}")


def json_value(value: Any) -> Any:
    """A typed value as JSON (durations in seconds)."""
    return value.total_seconds() if isinstance(value, timedelta) else value


# --- the per-process cache -----------------------------------------------------------------------

# Config is global (not per service), so one cache per process is right even when a test runs an
# API and a worker side by side in one interpreter.
_CONFIG: dict[tuple[str, str], Any] = {}
# Every live RuntimeSync, so tests (and /metrics-style introspection) can see what each applied.
INSTANCES: "weakref.WeakSet[RuntimeSync]" = weakref.WeakSet()


def config_value(category: str, key: str, default: Any = None) -> Any:
    """The current typed value of ``category.key`` in this process, else ``default``."""
    return _CONFIG.get((category, key), default)


class RuntimeSync:
    """Keeps one process's log levels and config cache in line with identity's tables."""

    def __init__(
        self,
        service: str,
        *,
        role: str,
        engine: AsyncEngine,
        nats: Callable[[], NATS | None],
        prefix: str = "",
        refresh_interval: float = DEFAULT_REFRESH_SECONDS,
    ) -> None:
        self.service, self.role, self.prefix = service, role, prefix
        self.engine, self._nats = engine, nats
        self.refresh_interval = refresh_interval
        # (service or "*", logger) -> level; the service's own row beats "*".
        self._rows: dict[tuple[str, str], str] = {}
        self.levels: dict[str, str] = {}  # logger -> level this instance applied
        self.config: dict[tuple[str, str], Any] = {}  # what this instance cached
        self._subs: list[Subscription] = []
        self._subscribed_to: NATS | None = None
        self._stop = asyncio.Event()
        self._task: asyncio.Task | None = None
        INSTANCES.add(self)

    # lifecycle

    async def start(self) -> None:
        """Load the tables (never fatal: a service starts even if this fails) and start syncing."""
        await self._refresh_quietly()
        await self._ensure_subscribed()
        self._task = asyncio.create_task(self._loop(), name=f"runtime-{self.service}-{self.role}")

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for sub in self._subs:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        self._subs.clear()
        INSTANCES.discard(self)

    async def _loop(self) -> None:
        next_refresh = time.monotonic() + self.refresh_interval
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=1.0)
            await self._ensure_subscribed()  # an API's NATS link may connect late
            if time.monotonic() >= next_refresh:
                await self._refresh_quietly()
                next_refresh = time.monotonic() + self.refresh_interval

    async def _ensure_subscribed(self) -> None:
        nc = self._nats()
        if nc is None or not nc.is_connected or self._subscribed_to is nc:
            return
        try:
            self._subs = [
                await nc.subscribe(prefixed(CONFIG_SUBJECT, self.prefix), cb=self._on_message),
                await nc.subscribe(prefixed(LOGGING_SUBJECT, self.prefix), cb=self._on_message),
            ]
            self._subscribed_to = nc
        except Exception as exc:  # retried on the next tick
            log.warning("runtime.subscribe_failed", extra={"error": repr(exc)})

    # applying changes

    async def refresh(self) -> None:
        """Re-read both tables and apply them (the source of truth wins over any missed message)."""
        async with self.engine.connect() as conn:
            configs = (
                await conn.execute(
                    sa.select(
                        _configs.c.category, _configs.c.key, _configs.c.value, _configs.c.value_type
                    )
                )
            ).all()
            levels = (
                await conn.execute(
                    sa.select(_levels.c.service, _levels.c.logger, _levels.c.level).where(
                        _levels.c.service.in_([self.service, ALL_SERVICES])
                    )
                )
            ).all()
        for category, key, value, value_type in configs:
            self._cache_config(category, key, value, value_type)
        self._rows = {(service, logger): level for service, logger, level in levels}
        for logger in {logger for _, logger in self._rows}:
            self._apply_level(logger)

    async def _refresh_quietly(self) -> None:
        try:
            await self.refresh()
        except Exception as exc:
            log.warning("runtime.refresh_failed", extra={"error": repr(exc)})

    async def _on_message(self, msg: Msg) -> None:
        try:
            envelope = Envelope.from_json(msg.data)
            data = envelope.payload
            if envelope.subject == CONFIG_SUBJECT:
                self._cache_config(data.category, data.key, data.value, data.value_type)
            elif envelope.subject == LOGGING_SUBJECT:
                if data.service not in (self.service, ALL_SERVICES):
                    return
                self._rows[(data.service, data.logger)] = str(data.level)
                self._apply_level(data.logger)
        except Exception as exc:  # a bad message must never take the subscription down
            log.warning("runtime.bad_message", extra={"error": repr(exc)})

    def _cache_config(self, category: str, key: str, text: str, value_type: str) -> None:
        try:
            value = parse_value(value_type, text)
        except (ValueError, TypeError) as exc:
            log.warning(
                "runtime.config_unparseable",
                extra={"category": category, "key": key, "error": repr(exc)},
            )
            return
        if self.config.get((category, key), _MISSING) != value:
            log.info("runtime.config_applied", extra={"category": category, "key": key})
        self.config[(category, key)] = value
        _CONFIG[(category, key)] = value

    def _apply_level(self, logger: str) -> None:
        level = self._rows.get((self.service, logger)) or self._rows.get((ALL_SERVICES, logger))
        if level is None or level not in LogLevel.__members__:
            return
        if self.levels.get(logger) != level:
            set_level(logger, level)
            self.levels[logger] = level
            log.info("runtime.log_level_applied", extra={"logger": logger, "level": level})


_MISSING = object()


async def start_runtime(
    service: str,
    *,
    role: str,
    engine: AsyncEngine,
    nats: Callable[[], NATS | None],
    prefix: str = "",
    refresh_interval: float = DEFAULT_REFRESH_SECONDS,
) -> RuntimeSync:
    """Start a :class:`RuntimeSync` for this process (call ``stop()`` on shutdown)."""
    runtime = RuntimeSync(
        service,
        role=role,
        engine=engine,
        nats=nats,
        prefix=prefix,
        refresh_interval=refresh_interval,
    )
    await runtime.start()
    return runtime
