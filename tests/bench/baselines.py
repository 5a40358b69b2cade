"""The two baselines ``bench_http`` runs beside Scout, each in its own uvicorn process.

* ``baseline_app`` — the physical floor: bare Starlette doing the same work by hand (PyJWT
  RS256 check, **exactly the SQL the service sent** for that request on a
  ``psycopg_pool.AsyncConnectionPool``, in autocommit or in a transaction where the service
  ran it in one, and the same NATS requests in the same order; rows answered with orjson).
* ``peer_app`` — the way most FastAPI/SQLModel services are written, after the FastAPI
  full-stack template: a synchronous SQLModel ``Session`` per request (``def`` endpoints and
  dependencies, run in FastAPI's thread pool), the caller resolved by a ``CurrentUser``
  dependency that checks the RS256 token with PyJWT and loads the ``User`` row, ORM objects,
  and a ``response_model``. ``GET /me`` loads the same five-table profile join as ORM objects;
  ``GET /campaigns`` counts and pages the caller's live campaigns as the template's
  ``read_items`` does; ``GET /jobs/{id}/results`` loads the job, checks its owner, counts and
  pages its per-creator rows (``verified`` and ``sort=followers_desc`` honoured) as ORM
  objects; ``POST /lists/{id}/items`` with ``from_job`` as a monolith writes it (one database,
  no message bus): loads the list and the job and checks they are the caller's, selects the
  job's creators by key as ORM objects, gets or creates each ``CreatorProfile``, checks with a
  select whether each is listed already, adds a ``ListItem`` for each that is not (under the
  list's row lock, with the stats) and commits, answering Scout's counts. Both read
  ``BENCH_CAPTURE`` (a pickle written by ``bench_http``).
"""

import contextlib
import os
import pickle
from decimal import Decimal
from typing import Annotated, Any

import jwt
import orjson
from cryptography.hazmat.primitives import serialization

ISSUER = "scout-bench"


def _capture() -> dict[str, Any]:
    with open(os.environ["BENCH_CAPTURE"], "rb") as fh:
        return pickle.load(fh)


def baseline_app():
    """``uvicorn tests.bench.baselines:baseline_app --factory``."""
    import nats
    from psycopg.rows import dict_row
    from psycopg_pool import AsyncConnectionPool
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    capture = _capture()
    key = serialization.load_pem_public_key(capture["public_key"])
    pool = AsyncConnectionPool(
        capture["dsn"],
        min_size=10,
        max_size=10,
        kwargs={"autocommit": True, "row_factory": dict_row},
        open=False,
    )
    link: dict[str, Any] = {}

    async def replay(conn, steps: list[tuple], answer: dict[str, Any]) -> None:
        """The recorded work in its order: each statement, inside a transaction where the
        service ran it in one (BEGIN before the first, COMMIT before anything outside it),
        and each NATS request."""
        in_txn = False
        for i, step in enumerate(steps):
            if step[0] == "nats":
                if in_txn:
                    await conn.execute("COMMIT")
                    in_txn = False
                _, subject, payload = step
                answer[str(i)] = len((await link["nc"].request(subject, payload, 2.0)).data)
                continue
            _, sql, params, autocommit, begins = step
            if in_txn and (begins or autocommit):
                await conn.execute("COMMIT")
                in_txn = False
            if begins:
                await conn.execute("BEGIN")
                in_txn = True
            cur = await conn.execute(sql, params)
            answer[str(i)] = await cur.fetchall() if cur.description else cur.rowcount
        if in_txn:
            await conn.execute("COMMIT")

    async def endpoint(request: Request) -> Response:
        steps = capture["routes"].get(f"{request.method} {request.url.path}?{request.url.query}"
                                      if request.url.query else
                                      f"{request.method} {request.url.path}")  # fmt: skip
        if steps is None:
            return Response(b'{"code":"not_found"}', 404, media_type="application/json")
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer "):
            return Response(b'{"code":"unauthorized"}', 401, media_type="application/json")
        try:
            claims = jwt.decode(auth[7:], key, algorithms=["RS256"], issuer=ISSUER)
        except jwt.PyJWTError:
            return Response(b'{"code":"unauthorized"}', 401, media_type="application/json")
        body = await request.body()
        answer: dict[str, Any] = {"sub": claims["sub"], "body": len(orjson.loads(body or b"{}"))}
        async with pool.connection() as conn:
            await replay(conn, steps, answer)
        return Response(orjson.dumps(answer, default=_default), media_type="application/json")

    @contextlib.asynccontextmanager
    async def lifespan(app):
        await pool.open(wait=True)
        link["nc"] = await nats.connect(capture["nats_url"])
        yield
        await link["nc"].close()
        await pool.close()

    routes = [Route("/{path:path}", endpoint, methods=["GET", "POST"])]
    return Starlette(routes=routes, lifespan=lifespan)


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError


def peer_app():
    """``uvicorn tests.bench.baselines:peer_app --factory``."""
    import uuid
    from datetime import UTC, datetime

    from fastapi import Depends, FastAPI, HTTPException, Query
    from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
    from pydantic import BaseModel, ConfigDict, Field, field_validator
    from sqlmodel import Session, create_engine, func, select

    from services.campaign.service.campaigns import PROFILE_FIELDS
    from services.campaign.service.from_job import as_item
    from shared.models import (
        Campaign,
        CreatorList,
        CreatorProfile,
        ListItem,
        ScrapingJob,
        ScrapingJobCreator,
        SubscriptionPlan,
        User,
        UserBilling,
        UserSubscription,
        UserSystemData,
        UserUsage,
    )
    from shared.queries.users import UserProfile, derive_trial_status
    from shared.results import MAX_CREATORS_PER_ANSWER, MAX_KEY_LENGTH, JobCreator

    capture = _capture()
    key = serialization.load_pem_public_key(capture["public_key"])
    engine = create_engine(capture["dsn"].replace("postgresql://", "postgresql+psycopg://", 1))
    bearer = HTTPBearer()

    def get_db():
        with Session(engine) as session:
            yield session

    SessionDep = Annotated[Session, Depends(get_db)]

    def get_current_user(
        session: SessionDep, token: Annotated[HTTPAuthorizationCredentials, Depends(bearer)]
    ) -> User:
        try:
            claims = jwt.decode(token.credentials, key, algorithms=["RS256"], issuer=ISSUER)
        except jwt.PyJWTError as exc:
            raise HTTPException(401, "Could not validate credentials") from exc
        user = session.exec(select(User).where(User.user_id == claims["sub"])).first()
        if user is None or user.deleted_at is not None:
            raise HTTPException(404, "User not found")
        return user

    CurrentUser = Annotated[User, Depends(get_current_user)]

    class CampaignPublic(BaseModel):
        model_config = ConfigDict(from_attributes=True)

        id: Any
        name: str
        description: str | None
        search_type: str
        status: str
        created_at: datetime
        updated_at: datetime

    class CampaignsPublic(BaseModel):
        data: list[CampaignPublic]
        count: int

    app = FastAPI()

    @app.get("/me", response_model=UserProfile)
    def read_me(
        session: SessionDep, token: Annotated[HTTPAuthorizationCredentials, Depends(bearer)]
    ):
        try:
            claims = jwt.decode(token.credentials, key, algorithms=["RS256"], issuer=ISSUER)
        except jwt.PyJWTError as exc:
            raise HTTPException(401, "Could not validate credentials") from exc
        row = session.exec(
            select(User, UserSubscription, UserBilling, UserUsage, UserSystemData, SubscriptionPlan)
            .outerjoin(UserSubscription, UserSubscription.user_id == User.id)
            .outerjoin(UserBilling, UserBilling.user_id == User.id)
            .outerjoin(UserUsage, UserUsage.user_id == User.id)
            .outerjoin(UserSystemData, UserSystemData.user_id == User.id)
            .outerjoin(SubscriptionPlan, SubscriptionPlan.plan_key == UserSubscription.current_plan)
            .where(User.user_id == claims["sub"])
        ).first()
        if row is None:
            raise HTTPException(404, "User not found")
        user, sub, billing, usage, system, plan = row
        fields: dict[str, Any] = {}
        for part in (system, usage, billing, sub, user):
            fields.update(part.model_dump(exclude={"id", "user_id", "created_at", "updated_at"}))
        fields.update(user.model_dump())
        fields["trial_status"] = derive_trial_status(
            sub.subscription_status, sub.trial_end_date, datetime.now(UTC)
        )
        fields["campaigns_limit"] = usage.plan_campaigns_limit or (
            plan.campaigns_limit if plan else 0
        )
        fields["creators_limit"] = _first(usage.plan_creators_limit, plan and plan.creators_limit)
        fields["enrichments_limit"] = plan.enrichments_limit if plan else 0
        return fields

    @app.get("/campaigns", response_model=CampaignsPublic)
    def read_campaigns(
        session: SessionDep,
        current_user: CurrentUser,
        page: int = Query(1, ge=1),
        page_size: int = Query(20, ge=1, le=100),
    ):
        mine = (Campaign.user_id == current_user.id, Campaign.deleted_at.is_(None))
        count = session.exec(select(func.count()).select_from(Campaign).where(*mine)).one()
        campaigns = session.exec(
            select(Campaign)
            .where(*mine)
            .order_by(Campaign.created_at.desc(), Campaign.id.desc())
            .offset((page - 1) * page_size)
            .limit(page_size)
        ).all()
        return CampaignsPublic(data=campaigns, count=count)

    class CreatorsPublic(BaseModel):
        data: list[dict[str, Any]]
        count: int

    @app.get("/jobs/{job_id}/results", response_model=CreatorsPublic)
    def read_results(
        session: SessionDep,
        current_user: CurrentUser,
        job_id: uuid.UUID,
        offset: int = Query(0, ge=0),
        limit: int = Query(50, ge=1, le=100),
        verified: bool | None = None,
        sort: str = "found",
    ):
        job = session.get(ScrapingJob, job_id)
        if job is None or job.user_id != current_user.id:
            raise HTTPException(404, "Job not found")
        mine = [ScrapingJobCreator.job_id == job_id]
        if verified is not None:
            mine.append(ScrapingJobCreator.verified == verified)
        count = session.exec(
            select(func.count()).select_from(ScrapingJobCreator).where(*mine)
        ).one()
        order = (
            (ScrapingJobCreator.followers.desc().nullslast(), ScrapingJobCreator.ordinal)
            if sort == "followers_desc"
            else (ScrapingJobCreator.ordinal,)
        )
        creators = session.exec(
            select(ScrapingJobCreator).where(*mine).order_by(*order).offset(offset).limit(limit)
        ).all()
        return CreatorsPublic(data=[c.creator for c in creators], count=count)

    class FromJobIn(BaseModel):
        model_config = ConfigDict(extra="forbid")

        job_id: uuid.UUID
        creator_keys: list[str] = Field(min_length=1, max_length=MAX_CREATORS_PER_ANSWER)

        @field_validator("creator_keys")
        @classmethod
        def _keys(cls, value: list[str]) -> list[str]:
            for key in value:
                if not 1 <= len(key.strip()) <= MAX_KEY_LENGTH or "\x00" in key:
                    raise ValueError(f"each creator key must be 1 to {MAX_KEY_LENGTH} characters")
            return value

    class ItemsAddIn(BaseModel):
        model_config = ConfigDict(extra="forbid")

        from_job: FromJobIn

    class ItemsAddedPublic(BaseModel):
        added: int
        skipped: int
        attempted: int
        missing: list[str]
        truncated: bool

    @app.post("/lists/{list_id}/items", response_model=ItemsAddedPublic)
    def add_items_from_job(
        session: SessionDep, current_user: CurrentUser, list_id: uuid.UUID, body: ItemsAddIn
    ):
        creator_list = session.get(CreatorList, list_id)
        if creator_list is None or creator_list.user_id != current_user.id:
            raise HTTPException(404, "List not found")
        job = session.get(ScrapingJob, body.from_job.job_id)
        if job is None or job.user_id != current_user.id:
            raise HTTPException(404, "Job not found")
        # Keys as scraping stores them; a repeated key is one creator sent twice (skipped).
        wanted = [k.strip().lower()[:MAX_KEY_LENGTH] for k in body.from_job.creator_keys]
        rows = session.exec(
            select(ScrapingJobCreator).where(
                ScrapingJobCreator.job_id == job.id,
                ScrapingJobCreator.platform == job.platform,
                ScrapingJobCreator.creator_key.in_(set(wanted)),
            )
        ).all()
        found = {row.creator_key: row for row in rows}
        missing = [k for k in dict.fromkeys(wanted) if k not in found]
        creators = [
            as_item(
                JobCreator.model_validate({**found[k].creator, "creator_key": k,
                                           "platform": job.platform}),
                job.id,
            )
            for k in wanted
            if k in found
        ]  # fmt: skip
        fresh: list[CreatorProfile] = []
        seen: set[tuple[str, str]] = set()
        for creator in creators:
            platform = creator.platform.value
            if (platform, creator.external_id) in seen:
                continue
            seen.add((platform, creator.external_id))
            profile = session.exec(
                select(CreatorProfile).where(
                    CreatorProfile.platform == platform,
                    CreatorProfile.external_id == creator.external_id,
                )
            ).first()
            if profile is None:
                fields = creator.model_dump(include=set(PROFILE_FIELDS))
                fields["metadata_"] = fields.pop("metadata")
                profile = CreatorProfile(**fields)
                session.add(profile)
            listed = session.exec(
                select(ListItem).where(
                    ListItem.list_id == list_id, ListItem.creator_id == profile.id
                )
            ).first()
            if listed is None:
                fresh.append(profile)
        if fresh:
            # Positions append after the last and the stats move by what went in: under the
            # list's row lock, so concurrent adds neither interleave nor lose a count.
            session.refresh(creator_list, with_for_update=True)
            listed = set(
                session.exec(
                    select(ListItem.creator_id).where(
                        ListItem.list_id == list_id,
                        ListItem.creator_id.in_([p.id for p in fresh]),
                    )
                ).all()
            )
            fresh = [p for p in fresh if p.id not in listed]  # added while this one waited
            top = session.exec(
                select(func.max(ListItem.position)).where(ListItem.list_id == list_id)
            ).one()
            start = -1 if top is None else top
            for offset, profile in enumerate(fresh, start=1):
                session.add(
                    ListItem(
                        list_id=list_id,
                        creator_id=profile.id,
                        position=start + offset,
                        added_by=current_user.id,
                    )
                )
            creator_list.creator_count += len(fresh)
            creator_list.follower_sum += sum(p.followers or 0 for p in fresh)
            session.add(creator_list)
        session.commit()
        return ItemsAddedPublic(
            added=len(fresh),
            skipped=len(creators) - len(fresh),
            attempted=len(creators),
            missing=missing,
            truncated=False,
        )

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        engine.dispose()

    app.router.lifespan_context = lifespan
    return app


def _first(*values: Any) -> int:
    """SQL's coalesce(…, 0)."""
    return next((v for v in values if v is not None), 0)
