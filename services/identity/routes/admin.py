"""Admin routes: users with their full state, runtime config and log levels (``AdminUser`` only)."""

from typing import Annotated

from fastapi import APIRouter, Path, Query

from shared.errors import UserNotFound
from shared.queries.pagination import MAX_PAGE
from shared.runtime import json_value, parse_value
from shared.web import NO_NUL, AdminUser, SessionDep, error_responses

from ..errors import (
    ConfigNotFound,
    InvalidConfigValue,
    LogLevelNotFound,
    ValueTypeMismatch,
    ValueTypeRequired,
)
from ..schemas import (
    ConfigPublic,
    ConfigPut,
    LoggingPublic,
    LoggingPut,
    UserDossier,
    UserPage,
    UserSummary,
)
from ..service import (
    config,
    log_level,
    put_config,
    put_log_level,
    search_users,
    user_dossier,
)

router = APIRouter(prefix="/admin", tags=["admin"])

Category = Annotated[str, Path(pattern=r"^[A-Za-z0-9_.-]{1,50}$")]
Key = Annotated[str, Path(pattern=r"^[A-Za-z0-9_.-]{1,100}$")]
ServiceName = Annotated[str, Path(pattern=r"^(identity|billing|campaign|scraping|\*)$")]
LoggerName = Annotated[str, Path(pattern=r"^[A-Za-z0-9_.-]{1,200}$")]


@router.get("/users", summary="Find users by email prefix (paginated, newest first)")
async def list_users(
    admin: AdminUser,
    session: SessionDep,
    email: Annotated[str | None, Query(max_length=320, pattern=NO_NUL)] = None,
    page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
    page_size: Annotated[int, Query(ge=1, le=100)] = 20,
) -> UserPage:
    """Users whose email starts with ``email`` (case-insensitive; all users without it), with
    plan and subscription status, newest first."""
    found = await search_users(session, email, page=page, page_size=page_size)
    return UserPage(
        items=[UserSummary.model_validate(r) for r in found.items],
        total=found.total,
        page=found.page,
        page_size=found.page_size,
    )


@router.get(
    "/users/{clerk_user_id}",
    summary="One user's full state and inconsistencies",
    responses=error_responses(UserNotFound),
)
async def get_user(
    clerk_user_id: Annotated[str, Path(max_length=200)], admin: AdminUser, session: SessionDep
) -> UserDossier:
    """The profile, derived trial status, the user's rows in every service's tables, recent
    events, and every inconsistency found (e.g. a deletion not yet applied everywhere)."""
    dossier = await user_dossier(session, clerk_user_id)
    if dossier is None:
        raise UserNotFound(f"No user {clerk_user_id!r}.")
    return dossier


def _config_public(row) -> ConfigPublic:
    return ConfigPublic(
        category=row.category,
        key=row.key,
        value=row.value,
        value_type=row.value_type,
        typed_value=json_value(parse_value(row.value_type, row.value)),
        description=row.description,
        is_hot_reloadable=row.is_hot_reloadable,
        updated_at=row.updated_at,
    )


@router.get(
    "/config/{category}/{key}",
    summary="A runtime configuration value",
    responses=error_responses(ConfigNotFound),
)
async def get_config(
    category: Category, key: Key, admin: AdminUser, session: SessionDep
) -> ConfigPublic:
    """The stored text, its type and the typed value (durations in seconds)."""
    return _config_public(await config(session, category, key))


@router.put(
    "/config/{category}/{key}",
    summary="Set a typed configuration value (hot)",
    responses=error_responses(ValueTypeRequired, InvalidConfigValue, ValueTypeMismatch),
)
async def set_config(
    category: Category, key: Key, body: ConfigPut, admin: AdminUser, session: SessionDep
) -> ConfigPublic:
    """Create or change a value; every running API and worker applies it within seconds
    (``platform.config.changed``), no restart. A new key needs its ``value_type``."""
    row = await put_config(
        session,
        category,
        key,
        body.value,
        value_type=body.value_type,
        description=body.description,
    )
    return _config_public(row)


@router.get(
    "/logging/{service}/{logger}",
    summary="A runtime log level",
    responses=error_responses(LogLevelNotFound),
)
async def get_log_level(
    service: ServiceName, logger: LoggerName, admin: AdminUser, session: SessionDep
) -> LoggingPublic:
    """The level set for ``logger`` in ``service`` (``*``: every service)."""
    row = await log_level(session, service, logger)
    return LoggingPublic.model_validate(dict(row._mapping))


@router.put("/logging/{service}/{logger}", summary="Set a log level in every running process")
async def set_log_level(
    service: ServiceName,
    logger: LoggerName,
    body: LoggingPut,
    admin: AdminUser,
    session: SessionDep,
) -> LoggingPublic:
    """Every running process of ``service`` (``*``: of every service) switches ``logger`` to
    the level within seconds (``platform.logging.changed``), no restart."""
    row = await put_log_level(session, service, logger, body.level.value)
    return LoggingPublic.model_validate(dict(row._mapping))
