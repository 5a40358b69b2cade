"""Every SQL statement about creator lists, their items and creator profiles.

List stats (``creator_count``, ``follower_sum``) change in the same statement as the items
they count, under the list's row lock, so they are never a stale cache (stats recomputed in a
separate transaction can deadlock with item writes and be left at stale values).

A page of items (``GET /lists/{id}/items``) is O(page): its total is ``creator_count`` (kept in
the same transaction as every item change), so a page never counts the whole list; items are
read in ``position`` order through ``ix_list_items_list_id_position``. A bucket filter has no
maintained count and counts through ``ix_list_items_list_id_bucket`` instead.
"""

import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import DriverQuery, driver_connection
from shared.models import CreatorList, CreatorProfile, ListItem
from shared.queries.pagination import Page, validate_page

from .appends import ADD_ITEMS, INSERT_PROFILES, LISTED
from .listing import LIST_FIELDS, list_page

# Only the fields a change names are touched (set_* flags), so notes can be cleared to NULL.
_UPDATE_ITEMS = sa.text("""
UPDATE list_items li SET
    position = CASE WHEN c.set_position THEN c.position ELSE li.position END,
    bucket = CASE WHEN c.set_bucket THEN c.bucket ELSE li.bucket END,
    notes = CASE WHEN c.set_notes THEN c.notes ELSE li.notes END,
    pinned = CASE WHEN c.set_pinned THEN c.pinned ELSE li.pinned END
FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS c(
    id uuid, set_position boolean, position int, set_bucket boolean, bucket text,
    set_notes boolean, notes text, set_pinned boolean, pinned boolean)
WHERE li.id = c.id AND li.list_id = :list_id
RETURNING li.id
""")

# Data-modifying CTEs always run to completion, so the stats update happens with the delete.
_REMOVE_ITEMS = sa.text("""
WITH removed AS (
    DELETE FROM list_items WHERE list_id = :list_id AND id = ANY(:ids) RETURNING id, creator_id
), stats AS (
    UPDATE creator_lists SET
        creator_count = creator_count - (SELECT count(*) FROM removed),
        follower_sum = follower_sum - (
            SELECT coalesce(sum(p.followers), 0)
            FROM removed JOIN creator_profiles p ON p.id = removed.creator_id)
    WHERE id = :list_id
    RETURNING id
)
SELECT removed.id FROM removed
""")


class ListItemRow(NamedTuple):
    id: uuid.UUID
    creator_id: uuid.UUID
    position: int
    bucket: str
    pinned: bool
    notes: str | None
    metrics_snapshot: dict[str, Any]
    added_at: datetime
    platform: str
    external_id: str
    handle: str
    display_name: str | None
    avatar_url: str | None
    url: str | None
    followers: int | None
    engagement_rate: Decimal | None
    category: str | None
    email: str | None


# An enriched creator shows its enriched follower count and first e-mail (metadata.enrichment,
# kept by scraping.creator.enriched); the stored ``followers`` stays the snapshot the list
# stats were summed from.
ENRICHED_FOLLOWERS = "coalesce((p.metadata->'enrichment'->>'followers')::bigint, p.followers)"
ENRICHED_EMAIL = "p.metadata->'enrichment'->'emails'->>0"

_ITEM_COLUMNS = f"""
  i.id, i.creator_id, i.position, i.bucket, i.pinned, i.notes, i.metrics_snapshot,
  i.created_at AS added_at, p.platform, p.external_id, p.handle, p.display_name, p.avatar_url, p.url,
  {ENRICHED_FOLLOWERS} AS followers, p.engagement_rate, p.category, {ENRICHED_EMAIL} AS email"""

# Ownership, total and page in one statement; no row ⇒ not this user's list (answer 404).
_ITEMS_PAGE = sa.text(
    f"""
SELECT l.creator_count AS _total, page.*
FROM creator_lists l
LEFT JOIN LATERAL (
  SELECT {_ITEM_COLUMNS}
  FROM list_items i JOIN creator_profiles p ON p.id = i.creator_id
  WHERE i.list_id = :list_id
  ORDER BY i.position, i.id
  LIMIT :limit OFFSET :offset
) page ON true
WHERE l.id = :list_id AND l.user_id = :user_id
"""
)

_BUCKET_ITEMS_PAGE = sa.text(
    f"""
SELECT (SELECT count(*) FROM list_items c WHERE c.list_id = :list_id AND c.bucket = :bucket)
         AS _total, page.*
FROM creator_lists l
LEFT JOIN LATERAL (
  SELECT {_ITEM_COLUMNS}
  FROM list_items i JOIN creator_profiles p ON p.id = i.creator_id
  WHERE i.list_id = :list_id AND i.bucket = :bucket
  ORDER BY i.position, i.id
  LIMIT :limit OFFSET :offset
) page ON true
WHERE l.id = :list_id AND l.user_id = :user_id
"""
)

# Pages run on the driver connection (``shared.db.DriverQuery``): the hottest list read.
_ITEMS_PAGE_DRIVER = DriverQuery(_ITEMS_PAGE)
_BUCKET_ITEMS_PAGE_DRIVER = DriverQuery(_BUCKET_ITEMS_PAGE)

EXPORT_COLUMNS = (
    "position", "bucket", "platform", "external_id", "handle", "display_name", "followers",
    "engagement_rate", "category", "url", "notes", "pinned", "added_at", "email",
)  # fmt: skip


_OWNED_LIST = "SELECT 1 FROM creator_lists WHERE id = :list_id AND user_id = :user_id"
_HAS_LIST = DriverQuery(sa.text(_OWNED_LIST))
_LOCK_LIST = DriverQuery(sa.text(f"{_OWNED_LIST} FOR UPDATE"))


def _json(rows: list[dict[str, Any]]) -> str:
    return orjson.dumps(rows).decode()


class ListRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, creator_list: CreatorList) -> CreatorList:
        self.session.add(creator_list)
        await self.session.flush()
        return creator_list

    async def page(
        self,
        user_id: uuid.UUID,
        *,
        page: int,
        page_size: int,
        archived: bool | None,
        tags: Sequence[str] = (),
        any_tags: Sequence[str] = (),
    ) -> Page[dict[str, Any]]:
        """A user's lists as dicts of ``LIST_FIELDS``, most recently changed first; ``tags``:
        lists holding every one, ``any_tags``: lists holding at least one (``listing``). A
        total filtered by tags is counted up to ``COUNT_CAP + 1`` (``capped`` says what to
        show); any other total is exact."""
        params: dict[str, Any] = {"user_id": user_id}
        if archived is not None:
            params["archived"] = archived
        if tags:
            params["tag"], params["tags"] = tags[0], list(tags)
        if any_tags:
            params["any_tags"] = list(any_tags)
        query = list_page(archived is not None, min(len(tags), 2), bool(any_tags))
        found = await query.run(self.session, params, page=page, page_size=page_size)
        items = [dict(zip(LIST_FIELDS, row, strict=True)) for row in found.items]
        return replace(found, items=items)

    async def get(
        self, user_id: uuid.UUID, list_id: uuid.UUID, *, for_update: bool = False
    ) -> CreatorList | None:
        """This user's list (another user's is ``None``); ``for_update`` serialises item writes."""
        stmt = sa.select(CreatorList).where(
            CreatorList.id == list_id, CreatorList.user_id == user_id
        )
        if for_update:
            stmt = stmt.with_for_update()
        return await self.session.scalar(stmt)

    async def hold(self, user_id: uuid.UUID, list_id: uuid.UUID, *, lock: bool = False) -> bool:
        """Whether this user has the list (one driver statement); ``lock`` takes its row lock."""
        query = _LOCK_LIST if lock else _HAS_LIST
        return await query.first(self.session, {"list_id": list_id, "user_id": user_id}) is not None

    async def items_page(
        self,
        user_id: uuid.UUID,
        list_id: uuid.UUID,
        *,
        page: int,
        page_size: int,
        bucket: str | None = None,
    ) -> Page[ListItemRow] | None:
        """One page of the user's list (position order) with each creator's profile columns, in
        one statement; None when the list does not exist or is another user's."""
        validate_page(page, page_size)
        params: dict[str, Any] = {
            "list_id": list_id,
            "user_id": user_id,
            "limit": page_size,
            "offset": (page - 1) * page_size,
        }
        query = _ITEMS_PAGE_DRIVER
        if bucket is not None:
            query, params["bucket"] = _BUCKET_ITEMS_PAGE_DRIVER, bucket
        rows = await query.all(self.session, params)
        if not rows:
            return None
        items = [ListItemRow(*row[1:]) for row in rows if row[1] is not None]
        return Page(items=items, total=rows[0][0], page=page, page_size=page_size)

    async def update(self, creator_list: CreatorList, fields: dict[str, Any]) -> None:
        """Apply ``fields`` (one UPDATE) and reload ``updated_at``, which a trigger sets."""
        for key, value in fields.items():
            setattr(creator_list, key, value)
        await self.session.flush()
        await self.session.refresh(creator_list)

    async def delete(self, creator_list: CreatorList) -> None:
        await self.session.execute(sa.delete(CreatorList).where(CreatorList.id == creator_list.id))

    async def bucket_counts(self, list_id: uuid.UUID) -> dict[str, int]:
        rows = await self.session.execute(
            sa.select(ListItem.bucket, sa.func.count())
            .where(ListItem.list_id == list_id)
            .group_by(ListItem.bucket)
        )
        return {bucket: n for bucket, n in rows.all()}

    async def listed(
        self, list_id: uuid.UUID, user_id: uuid.UUID, creators: list[dict[str, Any]]
    ) -> int | None:
        """How many of ``creators`` (platform, external_id) the user's list holds already, or
        None when the list is not theirs (one read, no lock: a read session will do)."""
        owned, listed = await LISTED.first(
            self.session, {"list_id": list_id, "user_id": user_id, "rows": _json(creators)}
        )
        return listed if owned else None

    async def add_profiles(self, profiles: list[dict[str, Any]]) -> None:
        """Upsert ``profiles`` (one statement); it needs no list lock, so it runs before one."""
        await INSERT_PROFILES.run(self.session, {"rows": _json(profiles)})

    async def add_items(
        self, list_id: uuid.UUID, user_id: uuid.UUID, items: list[dict[str, Any]]
    ) -> int | None:
        """Lock this user's list and append ``items`` (profiles upserted already): how many went
        in, or None when the list is not theirs. The lock and the append go in one round trip
        (pipeline mode); the append's own snapshot, taken once the lock is held, sees every item
        a previous holder committed, and the lock waits on no round trip in between."""
        driver = await driver_connection(self.session)
        owner = {"list_id": list_id, "user_id": user_id}
        async with driver.pipeline():
            locked = await driver.execute(_LOCK_LIST.sql, _LOCK_LIST.bind(owner))
            appended = await driver.execute(
                ADD_ITEMS.sql, ADD_ITEMS.bind({**owner, "rows": _json(items)})
            )
        if await locked.fetchone() is None:
            return None
        row = await appended.fetchone()
        assert row is not None  # the statement answers one row of counts
        return row[0]

    async def update_items(
        self, list_id: uuid.UUID, changes: list[dict[str, Any]]
    ) -> set[uuid.UUID]:
        rows = await self.session.execute(
            _UPDATE_ITEMS, {"rows": _json(changes), "list_id": list_id}
        )
        return set(rows.scalars())

    async def remove_items(self, list_id: uuid.UUID, ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        rows = await self.session.execute(_REMOVE_ITEMS, {"ids": list(ids), "list_id": list_id})
        return set(rows.scalars())


_ENRICHMENT = CreatorProfile.metadata_["enrichment"]  # type: ignore[index]


def export_statement(list_id: uuid.UUID) -> sa.Select:
    """The CSV rows of a list in position order (streamed with a server-side cursor)."""
    return (
        sa.select(
            ListItem.position,
            ListItem.bucket,
            CreatorProfile.platform,
            CreatorProfile.external_id,
            CreatorProfile.handle,
            CreatorProfile.display_name,
            sa.func.coalesce(
                _ENRICHMENT["followers"].astext.cast(sa.BigInteger), CreatorProfile.followers
            ),
            CreatorProfile.engagement_rate,
            CreatorProfile.category,
            CreatorProfile.url,
            ListItem.notes,
            ListItem.pinned,
            ListItem.created_at,
            _ENRICHMENT["emails"][0].astext,
        )
        .join(CreatorProfile, CreatorProfile.id == ListItem.creator_id)
        .where(ListItem.list_id == list_id)
        .order_by(ListItem.position, ListItem.id)
    )
