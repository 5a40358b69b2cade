"""A list's items: bulk adds deduped within the request and against the list, changes and
removals. The list's row lock serialises item writes, so positions append without gaps and the
list's stats move by exactly what was inserted, in the same statement as the items."""

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from ..errors import ListNotFound
from ..repository import ListRepository
from ..schemas import CreatorInput, ItemChange
from .campaigns import ITEM_FIELDS, PROFILE_FIELDS, require_list


def dedupe(creators: list[CreatorInput]) -> list[CreatorInput]:
    """First occurrence of each (platform, external_id) wins (the request's own duplicates)."""
    seen: set[tuple[str, str]] = set()
    unique = []
    for creator in creators:
        key = (creator.platform.value, creator.external_id)
        if key not in seen:
            seen.add(key)
            unique.append(creator)
    return unique


async def add_items(
    session: AsyncSession,
    reads: AsyncSession,
    user_id: uuid.UUID,
    list_id: uuid.UUID,
    creators: list[CreatorInput],
) -> dict[str, int]:
    """Add creators to a list: ``{added, skipped, attempted}``; skipped = already there or
    repeated in the request. ``reads`` answers, before any write, whether the list is the
    caller's and holds them all already: then nothing is written and no lock is taken (the
    unit of work stays unused)."""
    rows = [c.model_dump(mode="json") for c in dedupe(creators)]
    keys = [{"platform": row["platform"], "external_id": row["external_id"]} for row in rows]
    listed = await ListRepository(reads).listed(list_id, user_id, keys)
    if listed is None:
        raise ListNotFound()
    if listed == len(rows):  # nothing new: no write, no lock, the list untouched
        return {"added": 0, "skipped": len(creators), "attempted": len(creators)}
    profiles = [{k: row[k] for k in PROFILE_FIELDS} for row in rows]
    items = [{"ord": i, **{k: row[k] for k in ITEM_FIELDS}} for i, row in enumerate(rows)]
    repository = ListRepository(session)
    # Everything that needs no lock comes first, so the list's lock is held only for the
    # append: concurrent adds to one list queue on it for one statement and the commit.
    # (Taking the list lock after the profiles' cannot deadlock: no holder of a list lock
    # waits on a profile.) Another user's list rolls the profiles back with the rest.
    await repository.add_profiles(profiles)
    added = await repository.add_items(list_id, user_id, items)
    if added is None:
        raise ListNotFound()
    return {"added": added, "skipped": len(creators) - added, "attempted": len(creators)}


async def update_items(
    session: AsyncSession, user_id: uuid.UUID, list_id: uuid.UUID, changes: list[ItemChange]
) -> dict[str, Any]:
    """Position, bucket, notes, pinned of items of this list; unknown ids are reported back."""
    await require_list(session, user_id, list_id)
    rows = []
    for change in changes:
        sent = change.model_dump(mode="json", exclude_unset=True)
        row: dict[str, Any] = {"id": sent["id"]}
        for field in ("position", "bucket", "notes", "pinned"):
            row[f"set_{field}"] = field in sent
            row[field] = sent.get(field)
        rows.append(row)
    updated = await ListRepository(session).update_items(list_id, rows)
    wanted = list(dict.fromkeys(c.id for c in changes))
    return {"updated": len(updated), "missing": [i for i in wanted if i not in updated]}


async def remove_items(
    session: AsyncSession, user_id: uuid.UUID, list_id: uuid.UUID, item_ids: list[uuid.UUID]
) -> dict[str, Any]:
    await require_list(session, user_id, list_id, lock=True)
    wanted = list(dict.fromkeys(item_ids))
    removed = await ListRepository(session).remove_items(list_id, wanted)
    return {"removed": len(removed), "missing": [i for i in wanted if i not in removed]}
