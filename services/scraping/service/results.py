"""Reading a job's results narrowed and sorted, and answering campaign's question for a job's
creators (``scraping.results.creators``): data only ever from the stored results."""

import uuid

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from shared.results import JobCreatorsReply, JobCreatorsRequest, ResultsFilter

from ..creators import creator_key
from ..errors import JobNotFound
from ..repository import NarrowedPage, ResultsRepository


class ResultsService:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.repo = ResultsRepository(session)

    async def narrowed(
        self, clerk_user_id: str, job_id: uuid.UUID, query: ResultsFilter, *, offset: int,
        limit: int,
    ) -> NarrowedPage:  # fmt: skip
        """A page of the caller's job narrowed and sorted (one statement, caller resolved in
        it); another user's job or none at all → 404 ``job_not_found``."""
        page = await self.repo.narrowed_page(
            clerk_user_id, job_id, query.narrowing(), offset=offset, limit=limit
        )
        if page is None:
            raise JobNotFound()
        return page

    async def creators(self, request: JobCreatorsRequest) -> JobCreatorsReply:
        """The creators of the user's job that ``request`` names: by key (absent ones in
        ``missing``, repeats kept so the asker can count them), or a window of the narrowed
        set with ``more`` when it goes on."""
        platform = await self.repo.job_platform(request.user_id, request.job_id)
        if platform is None:
            raise JobNotFound()

        def creator(key: str, stored: str) -> dict:
            # The row's own key and the job's platform, whatever an old creator omitted.
            return {**orjson.loads(stored), "creator_key": key, "platform": platform}

        if request.creator_keys is not None:
            wanted = [creator_key(k) for k in request.creator_keys]
            found = await self.repo.by_keys(request.job_id, platform, list(dict.fromkeys(wanted)))
            stored = {key: creator(key, c) for key, c in found if c is not None}
            missing = list(dict.fromkeys(k for k in wanted if k not in stored))
            return JobCreatorsReply.of([stored[k] for k in wanted if k in stored], missing=missing)
        rows = await self.repo.matching(
            request.job_id, request.filter, offset=request.offset, limit=request.limit + 1
        )
        creators = [creator(key, c) for key, c in rows[: request.limit]]
        return JobCreatorsReply.of(creators, more=len(rows) > request.limit)
