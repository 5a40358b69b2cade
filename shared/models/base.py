"""Building blocks shared by every table: naming convention, keys, timestamps, CHECK helpers."""

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

# Deterministic constraint and index names: migrations and error handling can rely on them.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
SQLModel.metadata.naming_convention = NAMING_CONVENTION


def utcnow() -> datetime:
    return datetime.now(UTC)


def tz_timestamp(*, nullable: bool = True, index: bool = False):
    """A timezone-aware timestamp column (Scout never stores naive times)."""
    return Field(default=None, sa_type=sa.DateTime(timezone=True), nullable=nullable, index=index)


def counter(sa_type: Any = sa.Integer):
    """A NOT NULL count starting at 0 (server default too): the columns triggers maintain."""
    return Field(
        default=0, sa_type=sa_type, nullable=False,
        sa_column_kwargs={"server_default": sa.text("0")},
    )  # fmt: skip


def jsonb(default: str = "{}"):
    """A NOT NULL JSONB column with a server default (``'{}'`` or ``'[]'``)."""
    factory = dict if default == "{}" else list
    return Field(
        default_factory=factory,
        sa_type=JSONB,
        nullable=False,
        sa_column_kwargs={"server_default": sa.text(f"'{default}'::jsonb")},
    )


def enum_column(enum: type[StrEnum], *, default: StrEnum | None = None, nullable: bool = False):
    """A varchar sized to the longest value of ``enum``; pair it with ``one_of`` in table args."""
    length = max(len(v.value) for v in enum)
    kwargs = {}
    if default is not None:
        kwargs["server_default"] = default.value
    return Field(
        default=default,
        sa_type=sa.String(length),
        nullable=nullable,
        sa_column_kwargs=kwargs,
    )


def one_of(column: str, values: Iterable[StrEnum | str], *, nullable: bool = False):
    """CHECK constraint restricting ``column`` to ``values`` (named ``ck_<table>_<column>_allowed``)."""
    quoted = ", ".join(f"'{v}'" for v in values)
    expr = f"{column} IN ({quoted})"
    if nullable:
        expr = f"{column} IS NULL OR {expr}"
    return sa.CheckConstraint(expr, name=f"{column}_allowed")


class TableBase(SQLModel):
    """UUID key and tz-aware created/updated timestamps, on every table.

    ``updated_at`` is also maintained by the ``scout_set_updated_at`` trigger the migrations
    install on every table, so raw SQL updates keep it honest too.
    """

    id: uuid.UUID = Field(
        default_factory=uuid.uuid4,
        primary_key=True,
        sa_column_kwargs={"server_default": sa.text("gen_random_uuid()")},
    )
    created_at: datetime = Field(
        default_factory=utcnow,
        sa_type=sa.DateTime(timezone=True),
        nullable=False,
        sa_column_kwargs={"server_default": sa.func.now()},
    )
    updated_at: datetime = Field(
        default_factory=utcnow,
        sa_type=sa.DateTime(timezone=True),
        nullable=False,
        sa_column_kwargs={"server_default": sa.func.now(), "onupdate": sa.func.now()},
    )


def user_fk(*, unique: bool = False, nullable: bool = False, ondelete: str = "CASCADE"):
    """Foreign key to ``users.id``: the one user id space for every user-owned row."""
    return Field(
        default=None if nullable else ...,
        sa_type=sa.Uuid,
        foreign_key="users.id",
        ondelete=ondelete,
        nullable=nullable,
        unique=unique,
        index=not unique,
    )
