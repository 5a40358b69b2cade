"""Tables owned by the campaign service."""

import uuid
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, Relationship

from .base import TableBase, counter, enum_column, jsonb, one_of, tz_timestamp, user_fk
from .enums import CampaignStatus, ListBucket, ListPrivacy, ListType, Platform, SearchType

if TYPE_CHECKING:
    from .scraping import ScrapingJob


class Campaign(TableBase, table=True):
    __tablename__ = "campaigns"
    __table_args__ = (
        one_of("search_type", SearchType),
        one_of("status", CampaignStatus),
        # Listing newest first, optionally by status (seed pattern 2 and GET /campaigns?status=).
        sa.Index("ix_campaigns_user_id_created_at", "user_id", "created_at"),
        sa.Index("ix_campaigns_user_id_status_created_at", "user_id", "status", "created_at"),
        # GET /campaigns for heavy users: live campaigns already in page order (no sort) and an
        # index-only count for the page's total.
        sa.Index(
            "ix_campaigns_user_id_live_newest",
            "user_id",
            sa.desc("created_at"),
            sa.desc("id"),
            postgresql_where=sa.text("deleted_at IS NULL"),
        ),
    )

    user_id: uuid.UUID = Field(
        sa_type=sa.Uuid, foreign_key="users.id", ondelete="CASCADE", nullable=False
    )
    name: str = Field(sa_type=sa.Text, nullable=False)
    description: str | None = Field(default=None, sa_type=sa.Text)
    search_type: str = enum_column(SearchType, default=SearchType.keyword)
    status: str = enum_column(CampaignStatus, default=CampaignStatus.draft)
    # Set when deletion starts; scraping purges the campaign's jobs, then the row goes.
    deleted_at: datetime | None = tz_timestamp()

    jobs: list["ScrapingJob"] = Relationship(
        back_populates="campaign", sa_relationship_kwargs={"lazy": "raise"}
    )


class CreatorProfile(TableBase, table=True):
    """A creator, keyed by a stable (platform, external id), never a video id."""

    __tablename__ = "creator_profiles"
    __table_args__ = (
        sa.UniqueConstraint("platform", "external_id"),
        one_of("platform", Platform),
        sa.Index("ix_creator_profiles_platform_handle", "platform", "handle"),
    )

    platform: str = enum_column(Platform)
    external_id: str = Field(sa_type=sa.Text, nullable=False)
    handle: str = Field(sa_type=sa.Text, nullable=False)
    display_name: str | None = Field(default=None, sa_type=sa.Text)
    avatar_url: str | None = Field(default=None, sa_type=sa.Text)
    url: str | None = Field(default=None, sa_type=sa.Text)
    followers: int | None = Field(default=None, sa_type=sa.BigInteger)
    engagement_rate: Decimal | None = Field(default=None, sa_type=sa.Numeric(7, 4))
    category: str | None = Field(default=None, sa_type=sa.Text)
    metadata_: dict[str, Any] = Field(
        default_factory=dict,
        sa_type=JSONB,
        nullable=False,
        sa_column_kwargs={"name": "metadata", "server_default": sa.text("'{}'::jsonb")},
    )


class CreatorList(TableBase, table=True):
    __tablename__ = "creator_lists"
    __table_args__ = (
        one_of("type", ListType),
        one_of("privacy", ListPrivacy),
        sa.CheckConstraint("creator_count >= 0 AND follower_sum >= 0", name="stats_non_negative"),
        sa.Index(
            "ix_creator_lists_user_id_is_archived_updated_at",
            "user_id",
            "is_archived",
            "updated_at",
        ),
    )

    user_id: uuid.UUID = Field(
        sa_type=sa.Uuid, foreign_key="users.id", ondelete="CASCADE", nullable=False
    )
    name: str = Field(sa_type=sa.Text, nullable=False)
    description: str | None = Field(default=None, sa_type=sa.Text)
    type: str = enum_column(ListType, default=ListType.custom)
    privacy: str = enum_column(ListPrivacy, default=ListPrivacy.private)
    tags: list[str] = jsonb("[]")  # GET /lists?tag= / ?any_tag= walk CreatorListTag
    settings: dict[str, Any] = jsonb()
    is_archived: bool = Field(
        default=False, nullable=False, sa_column_kwargs={"server_default": sa.false()}
    )
    # Maintained in the same transaction as every item change (never a stale cache).
    creator_count: int = Field(
        default=0, nullable=False, sa_column_kwargs={"server_default": sa.text("0")}
    )
    follower_sum: int = Field(
        default=0,
        sa_type=sa.BigInteger,
        nullable=False,
        sa_column_kwargs={"server_default": sa.text("0")},
    )

    items: list["ListItem"] = Relationship(
        back_populates="creator_list", sa_relationship_kwargs={"lazy": "raise"}
    )


class CreatorListTag(TableBase, table=True):
    """One tag of one list, with the list's user, ``updated_at`` and ``is_archived``:
    ``GET /lists?tag=`` walks ``(user_id, tag, list_updated_at DESC, list_id DESC)`` for its
    page and counts the same range up to its cap, whatever the user's lists or matches. Kept
    by triggers on ``creator_lists`` (migration 0018) in the statement that writes the list;
    rows go with their list. Tags are the list's string elements of 1 to 100 characters."""

    __tablename__ = "creator_list_tags"
    __table_args__ = (
        sa.UniqueConstraint("list_id", "tag"),
        sa.Index(
            "ix_creator_list_tags_user_id_tag_newest",
            "user_id",
            "tag",
            sa.text("list_updated_at DESC"),
            sa.text("list_id DESC"),
            postgresql_include=["list_archived"],
        ),
    )

    list_id: uuid.UUID = Field(
        sa_type=sa.Uuid, foreign_key="creator_lists.id", ondelete="CASCADE", nullable=False
    )
    user_id: uuid.UUID = Field(sa_type=sa.Uuid, nullable=False)
    tag: str = Field(sa_type=sa.Text, nullable=False)
    list_updated_at: datetime = Field(sa_type=sa.DateTime(timezone=True), nullable=False)
    list_archived: bool = Field(nullable=False)


class ListItem(TableBase, table=True):
    __tablename__ = "list_items"
    __table_args__ = (
        sa.UniqueConstraint("list_id", "creator_id"),
        one_of("bucket", ListBucket),
        sa.Index("ix_list_items_list_id_position", "list_id", "position"),
        sa.Index("ix_list_items_list_id_bucket", "list_id", "bucket"),
    )

    list_id: uuid.UUID = Field(
        sa_type=sa.Uuid, foreign_key="creator_lists.id", ondelete="CASCADE", nullable=False
    )
    creator_id: uuid.UUID = Field(
        sa_type=sa.Uuid,
        foreign_key="creator_profiles.id",
        ondelete="CASCADE",
        nullable=False,
        index=True,
    )
    position: int = Field(
        default=0, nullable=False, sa_column_kwargs={"server_default": sa.text("0")}
    )
    bucket: str = enum_column(ListBucket, default=ListBucket.backlog)
    added_by: uuid.UUID | None = user_fk(nullable=True, ondelete="SET NULL")
    notes: str | None = Field(default=None, sa_type=sa.Text)
    metrics_snapshot: dict[str, Any] = jsonb()
    custom_fields: dict[str, Any] = jsonb()
    pinned: bool = Field(
        default=False, nullable=False, sa_column_kwargs={"server_default": sa.false()}
    )
    last_contacted_at: datetime | None = tz_timestamp()

    creator_list: CreatorList = Relationship(
        back_populates="items", sa_relationship_kwargs={"lazy": "raise"}
    )
    creator: CreatorProfile = Relationship(sa_relationship_kwargs={"lazy": "raise"})


class CampaignUserStats(TableBase, table=True):
    """What a user owns in campaign, counted: live campaigns by status, lists, and the items of
    their unarchived lists by bucket. Kept by triggers (migration 0010) in the same statement
    as the rows they count — inserts, updates, deletes, COPY and cascades alike — so the
    dashboard and the campaigns page's total read one row whatever the user owns. No row means
    zeros. ``scout db inspect`` checks every row against a recount."""

    __tablename__ = "campaign_user_stats"

    user_id: uuid.UUID = user_fk(unique=True)
    campaigns: int = counter()
    draft: int = counter()
    active: int = counter()
    completed: int = counter()
    archived: int = counter()
    lists: int = counter()
    backlog: int = counter()
    shortlist: int = counter()
    contacted: int = counter()
    responded: int = counter()
    booked: int = counter()
    rejected: int = counter()
