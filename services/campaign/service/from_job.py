"""Search results straight into a list: ``POST /lists/{id}/items`` with ``from_job``.

Campaign owns lists, scraping owns results: the creators come from scraping's stored results,
asked over request/reply (``scraping.results.creators``) with no transaction open, never from
the client. They then go in exactly like a plain bulk add (:func:`add_items`: the list's row
lock, the same dedupe and the same append-at-the-end positions), so concurrent adds stay
gap-free and duplicate-free.
"""

import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from shared.events.rpc import RemoteError
from shared.results import (
    MAX_CREATORS_PER_ANSWER,
    JobCreator,
    JobCreatorsRequest,
    ResultsClient,
)

from ..errors import JobNotFound
from ..schemas import INT64_MAX, MAX_FROM_JOB, CreatorInput, FromJob
from .campaigns import require_list
from .items import add_items


def _clip(value: str | None, length: int) -> str | None:
    value = (value or "").strip()
    return value[:length] if value else None


def _url(value: str | None) -> str | None:
    return value if value and len(value) <= 2000 else None


def as_item(creator: JobCreator, job_id: uuid.UUID) -> CreatorInput:
    """A stored creator as a list item's creator: follower figures as scraping stored them."""
    followers = creator.followers
    rate = creator.engagement_rate
    return CreatorInput(
        platform=creator.platform,
        external_id=_clip(creator.external_id, 200) or creator.creator_key[:200],
        handle=_clip(creator.username, 200) or creator.creator_key[:200],
        display_name=_clip(creator.display_name, 500),
        avatar_url=_url(creator.avatar_url),
        url=_url(creator.profile_url),
        followers=followers if followers is not None and 0 <= followers <= INT64_MAX else None,
        engagement_rate=Decimal(str(rate)) if rate is not None and 0 <= rate <= 999 else None,
        metadata={
            "creator_key": creator.creator_key,
            "verified": creator.verified,
            "emails": creator.emails[:20],
            "source": creator.source,
            "synthetic": creator.synthetic,
            "job_id": str(job_id),
        },
    )


async def _ask(results: ResultsClient, request: JobCreatorsRequest):
    try:
        return await results.creators(request)
    except RemoteError as exc:
        if exc.code == JobNotFound.code:
            raise JobNotFound() from None
        raise


async def add_from_job(
    session: AsyncSession, reads: AsyncSession, results: ResultsClient, user_id: uuid.UUID,
    list_id: uuid.UUID, source: FromJob,
) -> dict[str, Any]:  # fmt: skip
    """``{added, skipped, attempted, missing, truncated}``: the job's creators named by key
    (absent keys in ``missing``; a key repeated in the request counts as skipped, as in a
    plain add) or its narrowed set's first :data:`MAX_FROM_JOB` (``truncated`` when it held
    more). Another user's job or list → 404; scraping unreachable → 503, nothing added."""
    # 404 before anyone is asked: a read of its own (``reads``), so no transaction is open
    # while scraping is asked; the items go in with ``session``, the list locked again there.
    await require_list(reads, user_id, list_id)
    missing: list[str] = []
    truncated = False
    if source.creator_keys is not None:
        reply = await _ask(
            results,
            JobCreatorsRequest(
                user_id=user_id, job_id=source.job_id, creator_keys=source.creator_keys
            ),
        )
        creators, missing = reply.creators, reply.missing
    else:
        creators = []
        narrowing = source.narrowing()
        while True:
            reply = await _ask(
                results,
                JobCreatorsRequest(
                    user_id=user_id, job_id=source.job_id, filter=narrowing,
                    offset=len(creators),
                    limit=min(MAX_CREATORS_PER_ANSWER, MAX_FROM_JOB - len(creators)),
                ),
            )  # fmt: skip
            creators += reply.creators
            if not reply.more or not reply.creators:
                break
            if len(creators) >= MAX_FROM_JOB:
                truncated = True
                break
    counts = await add_items(
        session, reads, user_id, list_id, [as_item(c, source.job_id) for c in creators]
    )
    return {**counts, "missing": missing, "truncated": truncated}
