"""Runtime configuration and log levels: typed values every process applies without a restart
(``platform.config.changed`` / ``platform.logging.changed``, see ``shared.runtime``)."""

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from shared import runtime
from shared.events.outbox import record_event
from shared.models.enums import ConfigValueType

from ..errors import (
    ConfigNotFound,
    InvalidConfigValue,
    LogLevelNotFound,
    ValueTypeMismatch,
    ValueTypeRequired,
)
from ..repository import IdentityRepository
from .users import SERVICE


async def config(session: AsyncSession, category: str, key: str) -> Any:
    """The stored value of ``category.key``, or 404 ``config_not_found``."""
    row = await IdentityRepository(session).get_config(category, key)
    if row is None:
        raise ConfigNotFound(f"No configuration {category}.{key}.")
    return row


async def log_level(session: AsyncSession, service: str, logger: str) -> Any:
    """The runtime log level set for ``service``/``logger``, or 404 ``log_level_not_found``."""
    row = await IdentityRepository(session).get_level(service, logger)
    if row is None:
        raise LogLevelNotFound(f"No log level set for {service}/{logger}.")
    return row


async def put_config(
    session: AsyncSession,
    category: str,
    key: str,
    value: Any,
    *,
    value_type: ConfigValueType | None,
    description: str | None,
) -> Any:
    """Validate and store a typed value; emits ``platform.config.changed`` when it changed."""
    repo = IdentityRepository(session)
    row = await repo.get_config(category, key, lock=True)
    if row is None:
        if value_type is None:
            raise ValueTypeRequired(f"{category}.{key} does not exist yet; give its value_type.")
        text = _normalise(value_type, value)
        row = await repo.insert_config(
            category=category,
            key=key,
            value=text,
            value_type=value_type.value,
            description=description,
        )
        if row is None:  # created concurrently: update it like any existing key
            row = await repo.get_config(category, key, lock=True)
        else:
            await _record_config(session, row, previous=None)
            return row
    assert row is not None
    if value_type is not None and value_type != row.value_type:
        raise ValueTypeMismatch(f"{category}.{key} holds a {row.value_type}, not a {value_type}.")
    text = _normalise(ConfigValueType(row.value_type), value)
    if text == row.value and (description is None or description == row.description):
        return row
    changes: dict[str, Any] = {"value": text}
    if description is not None:
        changes["description"] = description
    updated = await repo.update_config(category, key, **changes)
    if text != row.value:
        await _record_config(session, updated, previous=row.value)
    return updated


def _normalise(value_type: ConfigValueType, value: Any) -> str:
    try:
        return runtime.normalise_value(value_type, value)
    except runtime.InvalidConfigValue as exc:
        raise InvalidConfigValue(f"Invalid {value_type} value: {exc}.") from exc


async def _record_config(session: AsyncSession, row: Any, *, previous: str | None) -> None:
    await record_event(
        session,
        service=SERVICE,
        type="platform.config.changed",
        aggregate_type="config",
        aggregate_id=f"{row.category}.{row.key}",
        data={
            "category": row.category,
            "key": row.key,
            "value": row.value,
            "value_type": row.value_type,
            "previous_value": previous,
        },
    )


async def put_log_level(session: AsyncSession, service: str, logger: str, level: str) -> Any:
    """Store a runtime log level; emits ``platform.logging.changed`` when it changed."""
    repo = IdentityRepository(session)
    previous = await repo.get_level(service, logger, lock=True)
    row = await repo.upsert_level(service, logger, level)
    if previous is None or previous.level != level:
        await record_event(
            session,
            service=SERVICE,
            type="platform.logging.changed",
            aggregate_type="logging",
            aggregate_id=f"{service}/{logger}",
            data={"service": service, "logger": logger, "level": level},
        )
    return row
