"""Tables owned by the identity service."""

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any, Optional

import sqlalchemy as sa
from sqlmodel import Field, Relationship

from .base import TableBase, enum_column, jsonb, one_of, tz_timestamp, user_fk
from .enums import ConfigValueType, LogLevel, OnboardingStep, Service

if TYPE_CHECKING:
    from .billing import UserBilling, UserSubscription, UserUsage


class User(TableBase, table=True):
    """Core identity. ``user_id`` is the Clerk id; every other table references ``id``."""

    __tablename__ = "users"
    __table_args__ = (one_of("onboarding_step", OnboardingStep),)

    user_id: str = Field(sa_type=sa.Text, nullable=False, unique=True)
    email: str | None = Field(default=None, sa_type=sa.Text)
    full_name: str | None = Field(default=None, sa_type=sa.Text)
    business_name: str | None = Field(default=None, sa_type=sa.Text)
    brand_description: str | None = Field(default=None, sa_type=sa.Text)
    industry: str | None = Field(default=None, sa_type=sa.Text)
    onboarding_step: str = enum_column(OnboardingStep, default=OnboardingStep.pending)
    is_admin: bool = Field(
        default=False, nullable=False, sa_column_kwargs={"server_default": sa.false()}
    )
    # Set when deletion starts; the row itself goes once every service has purged its data.
    deleted_at: datetime | None = tz_timestamp()

    system_data: Optional["UserSystemData"] = Relationship(
        back_populates="user", sa_relationship_kwargs={"lazy": "raise", "uselist": False}
    )
    subscription: Optional["UserSubscription"] = Relationship(
        back_populates="user", sa_relationship_kwargs={"lazy": "raise", "uselist": False}
    )
    billing: Optional["UserBilling"] = Relationship(
        back_populates="user", sa_relationship_kwargs={"lazy": "raise", "uselist": False}
    )
    usage: Optional["UserUsage"] = Relationship(
        back_populates="user", sa_relationship_kwargs={"lazy": "raise", "uselist": False}
    )


# Case-insensitive email lookups and prefix search (admin ``GET /admin/users?email=``).
sa.Index(
    "ix_users_email_lower",
    sa.func.lower(User.__table__.c.email).label("email_lower"),
    postgresql_ops={"email_lower": "text_pattern_ops"},
)


class UserSystemData(TableBase, table=True):
    __tablename__ = "user_system_data"

    user_id: uuid.UUID = user_fk(unique=True)
    signup_timestamp: datetime = Field(
        default=None,
        sa_type=sa.DateTime(timezone=True),
        nullable=False,
        sa_column_kwargs={"server_default": sa.func.now()},
    )
    email_schedule_status: dict[str, Any] = jsonb()
    last_webhook_event: str | None = Field(default=None, sa_type=sa.String(100))
    last_webhook_timestamp: datetime | None = tz_timestamp()

    user: User = Relationship(
        back_populates="system_data", sa_relationship_kwargs={"lazy": "raise"}
    )


class SystemConfiguration(TableBase, table=True):
    """Hot-reloadable runtime settings, typed by ``value_type``."""

    __tablename__ = "system_configurations"
    __table_args__ = (
        sa.UniqueConstraint("category", "key"),
        one_of("value_type", ConfigValueType),
    )

    category: str = Field(sa_type=sa.String(50), nullable=False)
    key: str = Field(sa_type=sa.String(100), nullable=False)
    value: str = Field(sa_type=sa.Text, nullable=False)
    value_type: str = enum_column(ConfigValueType)
    description: str | None = Field(default=None, sa_type=sa.Text)
    is_hot_reloadable: bool = Field(
        default=True, nullable=False, sa_column_kwargs={"server_default": sa.true()}
    )


class LoggingConfiguration(TableBase, table=True):
    """Runtime log levels per service and logger; ``service='*'`` applies to every service."""

    __tablename__ = "logging_configurations"
    __table_args__ = (
        sa.UniqueConstraint("service", "logger"),
        one_of("service", [*Service, "*"]),
        one_of("level", LogLevel),
    )

    service: str = Field(sa_type=sa.String(20), nullable=False)
    logger: str = Field(sa_type=sa.String(200), nullable=False)
    level: str = enum_column(LogLevel)


class UserDeletionStep(TableBase, table=True):
    """One service's part of deleting a user: written for every purging service when deletion
    starts, marked applied when that service's ``<service>.user.purged`` event arrives.

    The ``users`` row (and with it, by cascade, everything left) goes only once every step is
    applied. The acknowledgement lives here, in identity's own table, so neither the pruning of
    a service's inbox nor of the outbox can make a deletion look applied, or never applied.
    """

    __tablename__ = "user_deletion_steps"
    __table_args__ = (
        sa.UniqueConstraint("user_id", "service"),
        one_of("service", Service),
        # What the metric and the re-announcement read: the steps still waiting, oldest first.
        sa.Index(
            "ix_user_deletion_steps_pending",
            "requested_at",
            postgresql_where=sa.text("applied_at IS NULL"),
        ),
    )

    user_id: uuid.UUID = Field(
        sa_type=sa.Uuid, foreign_key="users.id", ondelete="CASCADE", nullable=False
    )
    service: str = enum_column(Service)
    # When the service was last asked (the deletion event, or a later re-announcement).
    requested_at: datetime = Field(
        default=None,
        sa_type=sa.DateTime(timezone=True),
        nullable=False,
        sa_column_kwargs={"server_default": sa.func.now()},
    )
    applied_at: datetime | None = tz_timestamp()
