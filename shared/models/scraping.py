"""Tables owned by the scraping service."""

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, Relationship

from .base import TableBase, counter, enum_column, jsonb, one_of, tz_timestamp
from .campaign import Campaign
from .enums import JobStatus, Platform, SearchType

# Upper bound on creators in one stored batch: rows stay small however big a job grows.
RESULT_BATCH_MAX = 250


class ScrapingJob(TableBase, table=True):
    __tablename__ = "scraping_jobs"
    __table_args__ = (
        one_of("status", JobStatus),
        one_of("platform", Platform),
        one_of("search_type", SearchType),
        sa.CheckConstraint("target_results BETWEEN 1 AND 1000", name="target_results_range"),
        sa.CheckConstraint("progress >= 0 AND progress <= 100", name="progress_range"),
        sa.CheckConstraint(
            "processed_results >= 0 AND processed_runs >= 0", name="counters_non_negative"
        ),
        sa.CheckConstraint(
            "keywords IS NULL OR jsonb_typeof(keywords) = 'array'", name="keywords_is_array"
        ),
        sa.Index("ix_scraping_jobs_user_id_created_at", "user_id", "created_at"),
        sa.Index("ix_scraping_jobs_user_id_status", "user_id", "status"),
        sa.Index("ix_scraping_jobs_campaign_id_created_at", "campaign_id", "created_at"),
        # keywords @> '["fitness"]' (containment only: jsonb_path_ops is smaller and faster).
        sa.Index(
            "ix_scraping_jobs_keywords_gin",
            "keywords",
            postgresql_using="gin",
            postgresql_ops={"keywords": "jsonb_path_ops"},
        ),
        # search_params ? 'key' needs the default jsonb_ops operator class.
        sa.Index("ix_scraping_jobs_search_params_gin", "search_params", postgresql_using="gin"),
        # The sweeper's scan: only live jobs, by deadline.
        sa.Index(
            "ix_scraping_jobs_timeout_at_live",
            "timeout_at",
            postgresql_where=sa.text("status IN ('pending', 'processing')"),
        ),
    )

    user_id: uuid.UUID = Field(
        sa_type=sa.Uuid, foreign_key="users.id", ondelete="CASCADE", nullable=False
    )
    campaign_id: uuid.UUID = Field(
        sa_type=sa.Uuid, foreign_key="campaigns.id", ondelete="CASCADE", nullable=False
    )
    run_id: str | None = Field(default=None, sa_type=sa.Text)
    status: str = enum_column(JobStatus, default=JobStatus.pending)
    platform: str = enum_column(Platform)
    search_type: str = enum_column(SearchType, default=SearchType.keyword)
    keywords: list[str] | None = Field(default=None, sa_type=JSONB)
    region: str = Field(
        default="US",
        sa_type=sa.String(10),
        nullable=False,
        sa_column_kwargs={"server_default": "US"},
    )
    target_username: str | None = Field(default=None, sa_type=sa.Text)
    search_params: dict[str, Any] = jsonb()
    processed_runs: int = Field(
        default=0, nullable=False, sa_column_kwargs={"server_default": sa.text("0")}
    )
    processed_results: int = Field(
        default=0, nullable=False, sa_column_kwargs={"server_default": sa.text("0")}
    )
    target_results: int = Field(
        default=1000, nullable=False, sa_column_kwargs={"server_default": sa.text("1000")}
    )
    cursor: int | None = Field(default=0, sa_column_kwargs={"server_default": sa.text("0")})
    progress: Decimal = Field(
        default=Decimal(0),
        sa_type=sa.Numeric(5, 2),
        nullable=False,
        sa_column_kwargs={"server_default": sa.text("0")},
    )
    reservation_id: uuid.UUID | None = Field(default=None, sa_type=sa.Uuid)
    started_at: datetime | None = tz_timestamp()
    completed_at: datetime | None = tz_timestamp()
    timeout_at: datetime | None = tz_timestamp()
    error: str | None = Field(default=None, sa_type=sa.Text)

    campaign: Campaign = Relationship(
        back_populates="jobs", sa_relationship_kwargs={"lazy": "raise"}
    )
    results: list["ScrapingResult"] = Relationship(
        back_populates="job", sa_relationship_kwargs={"lazy": "raise"}
    )


class ScrapingResult(TableBase, table=True):
    """One stored batch of a job's creators (bounded), addressable by ordinal for O(page) reads.

    The batch covers job-wide ordinals ``[first_ordinal, first_ordinal + creator_count)``.
    """

    __tablename__ = "scraping_results"
    __table_args__ = (
        sa.UniqueConstraint("job_id", "batch_no"),
        sa.UniqueConstraint("job_id", "first_ordinal"),
        sa.CheckConstraint(
            f"creator_count BETWEEN 1 AND {RESULT_BATCH_MAX}", name="creator_count_bounded"
        ),
        sa.CheckConstraint(
            "jsonb_typeof(creators) = 'array' AND jsonb_array_length(creators) = creator_count",
            name="creators_match_count",
        ),
        sa.CheckConstraint("first_ordinal >= 0 AND batch_no >= 0", name="ordinals_non_negative"),
    )

    job_id: uuid.UUID = Field(
        sa_type=sa.Uuid, foreign_key="scraping_jobs.id", ondelete="CASCADE", nullable=False
    )
    batch_no: int = Field(nullable=False)
    first_ordinal: int = Field(nullable=False)
    creator_count: int = Field(nullable=False)
    creators: list[dict[str, Any]] = Field(sa_type=JSONB, nullable=False)

    job: ScrapingJob = Relationship(
        back_populates="results", sa_relationship_kwargs={"lazy": "raise"}
    )


# The creator's queryable fields, generated from its stored JSON (one source of truth: the
# columns can never disagree with the creator a page serves).
_FOLLOWERS = (
    "CASE WHEN jsonb_typeof(creator -> 'followers') = 'number'"
    " THEN (creator ->> 'followers')::numeric::bigint END"
)
_VERIFIED = "coalesce(creator -> 'verified' = 'true'::jsonb, false)"
_HAS_EMAIL = (
    "coalesce(jsonb_typeof(creator -> 'emails') = 'array'"
    " AND creator -> 'emails' <> '[]'::jsonb, false)"
)
_SEARCH_TEXT = (
    "lower(coalesce(creator ->> 'username', '') || ' ' || coalesce(creator ->> 'display_name', '')"
    " || ' ' || coalesce(creator ->> 'bio', ''))"
)
# Creators of a job in blocks of this many, by discovery order: the text index keys each
# creator by its block, so counting the matches of ``q`` on a job of more than two blocks
# reads the first block before the rest.
TEXT_BLOCK = 65_536
# What the narrowing filters read besides the sort key: carried in the ordered indexes so a
# filtered page is an index-only walk until its rows are fetched.
FILTER_COLUMNS = ["verified", "has_email"]


class ScrapingJobCreator(TableBase, table=True):
    """One creator of a job: the dedupe key (the unique constraint is the cross-worker dedupe),
    its job-wide discovery ``ordinal``, the creator as served, and the columns the results'
    filters and sorts read, each generated from the creator.

    Discovery-order pages without filters read the bounded ``scraping_results`` batches;
    narrowed or sorted pages and lookups by key read these rows through their indexes.
    """

    __tablename__ = "scraping_job_creators"
    __table_args__ = (
        sa.UniqueConstraint("job_id", "platform", "creator_key"),
        one_of("platform", Platform),
        sa.CheckConstraint(
            "creator_key = lower(btrim(creator_key)) AND creator_key <> ''",
            name="creator_key_normalised",
        ),
        sa.CheckConstraint("ordinal >= 0", name="ordinal_non_negative"),
        sa.CheckConstraint("jsonb_typeof(creator) = 'object'", name="creator_is_object"),
        # Discovery order (sort=found with filters), and a job's n-th creator.
        sa.Index(
            "uq_scraping_job_creators_job_id_ordinal",
            "job_id",
            "ordinal",
            unique=True,
            postgresql_include=["followers", *FILTER_COLUMNS],
        ),
        # sort=followers_desc / followers_asc (unknown follower counts last in both), and
        # follower ranges in any order.
        sa.Index(
            "ix_scraping_job_creators_followers_desc",
            "job_id",
            sa.text("followers DESC NULLS LAST"),
            "ordinal",
            postgresql_include=FILTER_COLUMNS,
        ),
        sa.Index(
            "ix_scraping_job_creators_followers_asc",
            "job_id",
            sa.text("followers ASC NULLS LAST"),
            "ordinal",
            postgresql_include=FILTER_COLUMNS,
        ),
        # q: case-insensitive substring of username, display name or bio, within one job:
        # pg_trgm for the text and btree_gin for the job id, the block and the flags in ONE
        # index, so the lookup never reads trigrams of other jobs' creators, q with the flags
        # narrows to exact candidates before any row is read, and a count can read the
        # job's first block alone.
        sa.Index(
            "ix_scraping_job_creators_text_gin",
            "job_id",
            sa.text(f"(ordinal / {TEXT_BLOCK})"),
            *FILTER_COLUMNS,
            "search_text",
            postgresql_using="gin",
            postgresql_ops={"search_text": "gin_trgm_ops"},
        ),
        # q past a big job's first block: each trigram keyed by its job (``<job id><trigram>``,
        # the SQL function of migration 0021), so a rare run lists only this job's candidates
        # and no entry for the job id is read. Only creators past the first block are keyed;
        # a search's job (at most 1,000) never is.
        sa.Index(
            "ix_scraping_job_creators_text_keys",
            sa.text("scraping_text_keys(job_id, search_text)"),
            postgresql_using="gin",
            postgresql_where=sa.text(f"ordinal >= {TEXT_BLOCK}"),
        ),
    )

    job_id: uuid.UUID = Field(
        sa_type=sa.Uuid, foreign_key="scraping_jobs.id", ondelete="CASCADE", nullable=False
    )
    platform: str = enum_column(Platform)
    creator_key: str = Field(sa_type=sa.String(255), nullable=False)
    ordinal: int = Field(nullable=False)
    creator: dict[str, Any] = Field(sa_type=JSONB, nullable=False)
    followers: int | None = Field(
        default=None, sa_column=sa.Column(sa.BigInteger, sa.Computed(_FOLLOWERS, persisted=True))
    )
    verified: bool | None = Field(
        default=None,
        sa_column=sa.Column(sa.Boolean, sa.Computed(_VERIFIED, persisted=True), nullable=False),
    )
    has_email: bool | None = Field(
        default=None,
        sa_column=sa.Column(sa.Boolean, sa.Computed(_HAS_EMAIL, persisted=True), nullable=False),
    )
    search_text: str | None = Field(
        default=None,
        sa_column=sa.Column(sa.Text, sa.Computed(_SEARCH_TEXT, persisted=True), nullable=False),
    )


class ScrapingJobFlagCount(TableBase, table=True):
    """How many of a job's creators have each combination of the ``verified`` and
    ``has_email`` filters: the exact ``total`` of a results page narrowed by those flags
    alone, whatever the job's size. Kept by statement-level triggers on
    ``scraping_job_creators`` (migration 0017) in the same statement as the rows they count;
    rows go with their job. No row means zero; ``scout db analyze`` checks every row against a
    recount."""

    __tablename__ = "scraping_job_flag_counts"
    __table_args__ = (sa.UniqueConstraint("job_id", "verified", "has_email"),)

    job_id: uuid.UUID = Field(
        sa_type=sa.Uuid, foreign_key="scraping_jobs.id", ondelete="CASCADE", nullable=False
    )
    verified: bool = Field(nullable=False)
    has_email: bool = Field(nullable=False)
    creators: int = counter(sa.BigInteger)


class ScrapingUserDay(TableBase, table=True):
    """A user's searches of one UTC day (the day of the job's ``created_at``): how many were
    created, how many completed, and the creators found by those that finished (any terminal
    state). Kept by triggers on ``scraping_jobs`` (migration 0012) in the same statement as the
    jobs they count; a progress update of a running job writes nothing here. The dashboard's
    30-day figures sum the user's rows of the window plus the creators of the user's unfinished
    jobs, so they cost the same whatever the user searched. No row means zeros;
    ``scout db analyze`` checks every row against a recount."""

    __tablename__ = "scraping_user_days"
    __table_args__ = (sa.UniqueConstraint("user_id", "day"),)

    user_id: uuid.UUID = Field(
        sa_type=sa.Uuid, foreign_key="users.id", ondelete="CASCADE", nullable=False
    )
    day: date = Field(sa_type=sa.Date, nullable=False)
    searches: int = counter()
    completed: int = counter()
    creators: int = counter(sa.BigInteger)


class ScrapingJobKeyword(TableBase, table=True):
    """One keyword of one job, with the job's user and creation time: ``GET /jobs?keyword=``
    walks ``(user_id, keyword, job_created_at DESC, job_id DESC)`` for its page and counts the
    same range up to its cap, whatever the user's jobs or matches. Kept by triggers on
    ``scraping_jobs`` (migration 0013); rows go with their job. Keywords are the job's string
    elements of at most 100 characters."""

    __tablename__ = "scraping_job_keywords"
    __table_args__ = (
        sa.UniqueConstraint("job_id", "keyword"),
        sa.Index(
            "ix_scraping_job_keywords_user_id_keyword_newest",
            "user_id",
            "keyword",
            sa.text("job_created_at DESC"),
            sa.text("job_id DESC"),
        ),
    )

    job_id: uuid.UUID = Field(
        sa_type=sa.Uuid, foreign_key="scraping_jobs.id", ondelete="CASCADE", nullable=False
    )
    user_id: uuid.UUID = Field(sa_type=sa.Uuid, nullable=False)
    keyword: str = Field(sa_type=sa.Text, nullable=False)
    job_created_at: datetime = Field(sa_type=sa.DateTime(timezone=True), nullable=False)
