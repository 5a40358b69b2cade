"""Each list's tags as rows, kept by triggers on ``creator_lists``, for ``GET /lists?tag=``.

``creator_list_tags`` holds one row per (list, tag) with the list's user, ``updated_at`` and
``is_archived``, indexed as ``(user_id, tag, list_updated_at DESC, list_id DESC)`` including
``list_archived``: a user's lists with a tag, in listing order, are one ordered index range. A
page reads its entries and then only the page's lists; the total counts index entries and
stops at the cap. Neither depends on how many lists the user has (the GIN index on ``tags``
this replaces found every list of every user holding the tag, then filtered and sorted them).

Tags are the list's string elements of 1 to 100 characters (what a filter can ask for).
Inserts are one statement per statement (transition table, so a COPY costs one). An UPDATE
fires only for a list that has or had tags and whose tags, user, ``updated_at`` or
``is_archived`` changed (a row trigger whose WHEN clause is evaluated without calling the
function): new tags or a new user rebuild the list's rows, anything else moves them. Item
writes touch the list's counters and so its ``updated_at``: a tagged list's rows follow in
the same statement. Rows go with the list (foreign key cascade). Existing lists are indexed at
upgrade, under a lock that keeps writers out until the triggers are in place.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-18 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from migrations.helpers import (
    add_updated_at_trigger,
    create_definer_functions,
    create_triggers,
    row_columns,
)

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "creator_list_tags"


def _insert(source: str) -> str:
    return f"""
    INSERT INTO {TABLE} (list_id, user_id, tag, list_updated_at, list_archived)
    SELECT DISTINCT l.id, l.user_id, e.value #>> '{{}}', l.updated_at, l.is_archived
    FROM {source} l CROSS JOIN LATERAL jsonb_array_elements(
      CASE WHEN jsonb_typeof(l.tags) = 'array' THEN l.tags ELSE '[]'::jsonb END) e
    WHERE jsonb_typeof(e.value) = 'string' AND char_length(e.value #>> '{{}}') BETWEEN 1 AND 100
    ORDER BY 1, 3
    ON CONFLICT (list_id, tag) DO NOTHING;
    """


_NEW = (
    "(SELECT NEW.id AS id, NEW.user_id AS user_id, NEW.tags AS tags,"
    " NEW.updated_at AS updated_at, NEW.is_archived AS is_archived)"
)
FUNCTIONS = {
    "creator_list_tags_lists": f"""
    BEGIN
      {_insert("new_rows")}
      RETURN NULL;
    END""",
    "creator_list_tags_list_changed": f"""
    BEGIN
      IF (OLD.tags, OLD.user_id) IS DISTINCT FROM (NEW.tags, NEW.user_id) THEN
        DELETE FROM {TABLE} WHERE list_id = OLD.id;
        {_insert(_NEW)}
      ELSE
        UPDATE {TABLE} SET list_updated_at = NEW.updated_at, list_archived = NEW.is_archived
        WHERE list_id = NEW.id;
      END IF;
      RETURN NULL;
    END""",
}

_CHANGED = (
    "(OLD.tags <> '[]'::jsonb OR NEW.tags <> '[]'::jsonb)"
    " AND (OLD.tags, OLD.user_id, OLD.updated_at, OLD.is_archived)"
    " IS DISTINCT FROM (NEW.tags, NEW.user_id, NEW.updated_at, NEW.is_archived)"
)
# name -> (timing and events, transition tables, level and condition, function)
TRIGGERS = {
    "trg_creator_lists_tags_insert": ("AFTER INSERT", "REFERENCING NEW TABLE AS new_rows", "FOR EACH STATEMENT", "creator_list_tags_lists"),
    "trg_creator_lists_tags_update": ("AFTER UPDATE", "", f"FOR EACH ROW WHEN ({_CHANGED})", "creator_list_tags_list_changed"),
}  # fmt: skip


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("list_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("tag", sa.Text(), nullable=False),
        sa.Column("list_updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("list_archived", sa.Boolean(), nullable=False),
        *row_columns(),
        sa.ForeignKeyConstraint(
            ["list_id"],
            ["creator_lists.id"],
            name=op.f("fk_creator_list_tags_list_id_creator_lists"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_creator_list_tags")),
        sa.UniqueConstraint("list_id", "tag", name=op.f("uq_creator_list_tags_list_id_tag")),
    )
    add_updated_at_trigger(TABLE)
    create_definer_functions(FUNCTIONS)
    # Indexed under the triggers' lock: no write can slip between backfill and trigger.
    op.execute("LOCK TABLE creator_lists IN SHARE ROW EXCLUSIVE MODE")
    create_triggers("creator_lists", TRIGGERS)
    op.execute(_insert("creator_lists"))
    # Built after the backfill: one sorted build instead of a million insertions.
    op.create_index(
        "ix_creator_list_tags_user_id_tag_newest",
        TABLE,
        ["user_id", "tag", sa.text("list_updated_at DESC"), sa.text("list_id DESC")],
        postgresql_include=["list_archived"],
    )
    # Nothing reads the GIN index any more; dropping it spares every list write its upkeep.
    op.drop_index("ix_creator_lists_tags_gin", table_name="creator_lists")


def downgrade() -> None:
    op.create_index("ix_creator_lists_tags_gin", "creator_lists", ["tags"], postgresql_using="gin")
    for name in TRIGGERS:
        op.execute(f"DROP TRIGGER {name} ON creator_lists")
    for name in FUNCTIONS:
        op.execute(f"DROP FUNCTION {name}()")
    op.drop_table(TABLE)
