"""Creator list logic: bulk add with dedupe, item changes and removals, all in one transaction."""

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from shared.errors import NotFound
from shared.models import CreatorList

from .repository import ListRepository
from .schemas import CreatorInput, ItemChange, ListUpdate

PROFILE_FIELDS = (
    "platform", "external_id", "handle", "display_name", "avatar_url", "url", "followers",
    "engagement_rate", "category", "metadata",
)  # fmt: skip
ITEM_FIELDS = ("platform", "external_id", "bucket", "notes", "pinned", "metrics_snapshot",
               "custom_fields")  # fmt: skip


def list_not_found() -> NotFound:
    return NotFound("No such list.", code="list_not_found")


async def owned_list(
    repo: ListRepository, user_id: uuid.UUID, list_id: uuid.UUID, *, lock: bool = False
) -> CreatorList:
    creator_list = await repo.get(user_id, list_id, for_update=lock)
    if creator_list is None:
        raise list_not_found()
    return creator_list


async def update_list(
    session: AsyncSession, user_id: uuid.UUID, list_id: uuid.UUID, body: ListUpdate
) -> CreatorList:
    repo = ListRepository(session)
    creator_list = await owned_list(repo, user_id, list_id, lock=True)
    fields = body.model_dump(exclude_unset=True)
    for key, value in fields.items():
        setattr(creator_list, key, value)
    if fields:
        await session.flush()
        await repo.refresh(creator_list)  # updated_at comes from the trigger
    return creator_list


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
    session: AsyncSession, user_id: uuid.UUID, list_id: uuid.UUID, creators: list[CreatorInput]
) -> dict[str, int]:
    """Add creators to a list: ``{added, skipped, attempted}``; skipped = already there or
    repeated in the request. The list's row lock serialises concurrent adds to one list, so
    positions append without gaps and stats move by exactly what was inserted."""
    repo = ListRepository(session)
    await owned_list(repo, user_id, list_id, lock=True)
    unique = dedupe(creators)
    rows = [c.model_dump(mode="json") for c in unique]
    profiles = [{k: row[k] for k in PROFILE_FIELDS} for row in rows]
    items = [{"ord": i, **{k: row[k] for k in ITEM_FIELDS}} for i, row in enumerate(rows)]
    added = await repo.add_items(list_id, user_id, profiles, items)
    return {"added": added, "skipped": len(creators) - added, "attempted": len(creators)}


async def update_items(
    session: AsyncSession, user_id: uuid.UUID, list_id: uuid.UUID, changes: list[ItemChange]
) -> dict[str, Any]:
    """Position, bucket, notes, pinned of items of this list; unknown ids are reported back."""
    repo = ListRepository(session)
    await owned_list(repo, user_id, list_id)
    rows = []
    for change in changes:
        sent = change.model_dump(mode="json", exclude_unset=True)
        row: dict[str, Any] = {"id": sent["id"]}
        for field in ("position", "bucket", "notes", "pinned"):
            row[f"set_{field}"] = field in sent
            row[field] = sent.get(field)
        rows.append(row)
    updated = await repo.update_items(list_id, rows)
    wanted = list(dict.fromkeys(c.id for c in changes))
    return {"updated": len(updated), "missing": [i for i in wanted if i not in updated]}


async def remove_items(
    session: AsyncSession, user_id: uuid.UUID, list_id: uuid.UUID, item_ids: list[uuid.UUID]
) -> dict[str, Any]:
    repo = ListRepository(session)
    await owned_list(repo, user_id, list_id, lock=True)
    wanted = list(dict.fromkeys(item_ids))
    removed = await repo.remove_items(list_id, wanted)
    return {"removed": len(removed), "missing": [i for i in wanted if i not in removed]}
