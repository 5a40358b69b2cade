"""``GET /lists``: the statements of a user's lists page, one per combination of filters.

Unfiltered (or by ``archived`` alone), the page walks the user's lists most recently changed
first and its total is exact. Filtered by tags, it walks ``creator_list_tags``
(``ix_creator_list_tags_user_id_tag_newest``: a user's lists holding a tag, in listing order,
are one index range) and reads only the page's lists, so neither the page nor its total
depends on how many lists the user has:

- one ``tag``: the page is cut from the tag's entries (``archived`` is on the entry too), then
  only the page's lists are read.
- several ``tag`` (lists holding every one), or ``tag`` with ``any_tag``: the entries of the
  first tag, newest first, each checked against its list's tags on the way.
- ``any_tag`` alone: each tag's entries are walked as far as the page reaches (``offset +
  limit`` of them) and merged without duplicates (a list holding two of the tags is one
  item), then the page is cut and only its lists are read.

The entries carry their list's user (the triggers keep them equal; ``scout db analyze``
checks), so ownership is the walk's own condition: a second one on the lists would be read
by the planner as independent of the first and make it misjudge the join.

A tag-filtered total counts up to ``COUNT_CAP + 1`` matches (``capped`` says what to show).
"""

from functools import cache

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from shared.models import CreatorList, CreatorListTag
from shared.queries.pagination import (
    COUNT_CAP,
    PAGE_LIMIT,
    PAGE_OFFSET,
    PageQuery,
    capped_count,
)

# What a listing shows of a list (ListPublic), fetched as plain rows: no ORM objects.
LIST_COLUMNS = (
    CreatorList.id,
    CreatorList.name,
    CreatorList.description,
    CreatorList.type,
    CreatorList.privacy,
    CreatorList.tags,
    CreatorList.settings,
    CreatorList.is_archived,
    CreatorList.creator_count,
    CreatorList.follower_sum,
    CreatorList.created_at,
    CreatorList.updated_at,
)
LIST_FIELDS = tuple(c.key for c in LIST_COLUMNS)

_USER = sa.bindparam("user_id", type_=sa.Uuid)
_ARCHIVED = sa.bindparam("archived", type_=sa.Boolean)


@cache
def list_page(archived: bool, tags: int, any_tags: bool) -> PageQuery:
    """The user's lists page for one combination of filters (``tags``: how many tags every
    list must hold, 0, 1 or 2 for several), built once (values are bind parameters), run on
    the driver connection as plain rows. Parameters: ``user_id``, ``archived``, ``tag`` (the
    first of the tags), ``tags`` (all of them, JSONB), ``any_tags`` (text[])."""
    if tags:
        return _by_tag(archived, several=tags > 1, any_tags=any_tags)
    if any_tags:
        return _by_any_tag(archived)
    stmt = sa.select(*LIST_COLUMNS).where(CreatorList.user_id == _USER)
    if archived:
        stmt = stmt.where(CreatorList.is_archived == _ARCHIVED)
    order = (CreatorList.updated_at.desc(), CreatorList.id.desc())
    return PageQuery.build(stmt, order_by=order, driver=True)


def _entries(tag: sa.ColumnElement, archived: bool) -> tuple[sa.ColumnElement, ...]:
    """The user's entries of ``tag`` (with ``archived``, only lists that are or are not)."""
    e = CreatorListTag
    where = (e.user_id == _USER, e.tag == tag)
    return (*where, e.list_archived == _ARCHIVED) if archived else where


def _by_tag(archived: bool, *, several: bool, any_tags: bool) -> PageQuery:
    e = CreatorListTag
    entries = _entries(sa.bindparam("tag", type_=sa.Text), archived)
    newest = (e.list_updated_at.desc(), e.list_id.desc())
    if not (several or any_tags):
        # One tag: the page is cut from its entries before any list is read, and counted in
        # its index range alone (index-only).
        found = sa.select(e.list_id, e.list_updated_at).where(*entries)
        page = found.order_by(*newest).limit(PAGE_LIMIT).offset(PAGE_OFFSET).subquery("page")
        stmt = sa.select(*LIST_COLUMNS).join_from(
            page, CreatorList, CreatorList.id == page.c.list_id
        )
        order = (page.c.list_updated_at.desc(), page.c.list_id.desc())
        total = capped_count(found).scalar_subquery()
        return PageQuery.build(stmt, order_by=order, total=total, driver=True, windowed=True)
    # The other tags are on the list: each entry walked is checked against its list.
    stmt = (
        sa.select(*LIST_COLUMNS)
        .join_from(e, CreatorList, CreatorList.id == e.list_id)
        .where(*entries)
    )
    if several:
        stmt = stmt.where(CreatorList.tags.contains(sa.bindparam("tags", type_=postgresql.JSONB)))
    if any_tags:
        stmt = stmt.where(CreatorList.tags.has_any(_any_tags()))
    total = capped_count(stmt).scalar_subquery()
    return PageQuery.build(stmt, order_by=newest, total=total, driver=True)


def _by_any_tag(archived: bool) -> PageQuery:
    asked = sa.func.unnest(_any_tags()).table_valued("tag").render_derived(name="asked")

    def found(reach: sa.ColumnElement) -> sa.Select:
        """The lists among the first ``reach`` entries of each asked tag, each list once."""
        e = CreatorListTag
        walk = (
            sa.select(e.list_id, e.list_updated_at)
            .where(*_entries(asked.c.tag, archived))
            .order_by(e.list_updated_at.desc(), e.list_id.desc())
            .limit(reach)
            .lateral("walk")
        )
        return (
            sa.select(walk.c.list_id, walk.c.list_updated_at)
            .select_from(asked)
            .join(walk, sa.true())
            .distinct()
        )

    # The page is cut from the merged entries before any list is read.
    merged = found(PAGE_LIMIT + PAGE_OFFSET).subquery("merged")
    newest = (merged.c.list_updated_at.desc(), merged.c.list_id.desc())
    page = (
        sa.select(merged).order_by(*newest).limit(PAGE_LIMIT).offset(PAGE_OFFSET).subquery("page")
    )
    stmt = sa.select(*LIST_COLUMNS).join_from(page, CreatorList, CreatorList.id == page.c.list_id)
    order = (page.c.list_updated_at.desc(), page.c.list_id.desc())
    # Each tag's first COUNT_CAP + 1 entries: more lists than that if and only if the tags
    # hold more, so the count is exact up to the cap.
    every = found(sa.literal_column(str(COUNT_CAP + 1))).subquery("every")
    total = sa.select(sa.func.count()).select_from(every).scalar_subquery()
    return PageQuery.build(stmt, order_by=order, total=total, driver=True, windowed=True)


def _any_tags() -> sa.BindParameter:
    return sa.bindparam("any_tags", type_=postgresql.ARRAY(sa.Text))
