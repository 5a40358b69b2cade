"""Service plumbing shared by all four APIs: health, readiness, metrics, docs, errors, auth."""

import base64
import json
import logging

import jwt
import pytest
import sqlalchemy as sa
from fastapi import APIRouter
from pydantic import BaseModel

from shared.errors import Conflict
from shared.models import User
from shared.web import AdminUser, CurrentUser, SessionDep, create_app

from .factories import clerk_id
from .support.http import serving
from .support.keys import KeyPair


class Payload(BaseModel):
    name: str
    count: int


def demo_router() -> APIRouter:
    router = APIRouter()

    @router.get("/whoami")
    async def whoami(user: CurrentUser) -> dict:
        return {"sub": user.clerk_user_id}

    @router.get("/admin-only")
    async def admin_only(user: AdminUser) -> dict:
        return {"admin": user.clerk_user_id}

    @router.post("/echo")
    async def echo(body: Payload) -> Payload:
        return body

    @router.get("/boom")
    async def boom() -> dict:
        raise RuntimeError("a bug")

    @router.post("/users/{clerk}")
    async def create_user(clerk: str, session: SessionDep, fail: bool = False) -> dict:
        session.add(User(user_id=clerk))
        await session.flush()
        if fail:
            raise Conflict("made to fail after writing", code="demo_conflict")
        return {"created": clerk}

    return router


@pytest.fixture
def app(service_settings):
    return create_app("identity", routers=[demo_router()], settings=service_settings)


async def test_health_ready_and_metrics(app):
    async with serving(app) as client:
        assert (await client.get("/healthz")).json()["status"] == "ok"
        ready = await client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"] == {"postgres": True, "nats": True}
        metrics = (await client.get("/metrics")).text
        assert (
            'scout_http_request_duration_seconds_count{method="GET",route="/readyz",service="identity",status="200"}'
            in metrics
        )


async def test_docs_openapi_and_static_assets_have_their_own_metric_labels(app):
    async with serving(app) as client:
        for path in ("/docs", "/openapi.json", "/docs-static/swagger-ui.css", "/no/such/path"):
            await client.get(path)
        metrics = (await client.get("/metrics")).text
    for route, status in (
        ("/docs", 200),
        ("/openapi.json", 200),
        ("/docs-static/{path}", 200),
        ("unmatched", 404),
    ):
        sample = (
            "scout_http_request_duration_seconds_count"
            f'{{method="GET",route="{route}",service="identity",status="{status}"}}'
        )
        assert sample in metrics, route


async def test_a_bug_answers_500_and_logs_its_traceback_once(app, caplog):
    async with serving(app) as client:
        with caplog.at_level(logging.ERROR):
            response = await client.get("/boom", headers={"x-correlation-id": "req-boom"})
    assert (response.status_code, response.json()["code"]) == (500, "internal_error")
    assert response.headers["x-correlation-id"] == "req-boom"
    tracebacks = [r for r in caplog.records if r.exc_info]
    assert len(tracebacks) == 1, [(r.name, r.getMessage()) for r in caplog.records]
    assert tracebacks[0].exc_info[0] is RuntimeError and tracebacks[0].path == "/boom"


async def test_readiness_reports_an_unreachable_dependency(service_settings):
    settings = service_settings.model_copy(update={"nats_url": "nats://127.0.0.1:1"})
    async with serving(create_app("billing", settings=settings)) as client:
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["code"] == "dependency_unavailable"
        assert ready.json()["checks"] == {"postgres": True, "nats": False}
        assert (await client.get("/healthz")).status_code == 200


async def test_docs_work_without_a_cdn(app):
    async with serving(app) as client:
        page = (await client.get("/docs")).text
        assert "/docs-static/swagger-ui-bundle.js" in page and "cdn" not in page.lower()
        js = await client.get("/docs-static/swagger-ui-bundle.js")
        assert js.status_code == 200 and len(js.content) > 100_000
        assert (await client.get("/openapi.json")).json()["info"]["title"] == "Scout identity"


async def test_errors_have_a_stable_code_and_status(app, signing_keys):
    async with serving(app) as client:
        missing = await client.get("/nope")
        assert (missing.status_code, missing.json()["code"]) == (404, "not_found")
        invalid = await client.post("/echo", json={"name": "x", "count": "many"})
        assert invalid.status_code == 422
        body = invalid.json()
        assert body["code"] == "validation_error" and "count" in body["detail"]
        assert body["errors"][0]["loc"] == ["body", "count"]
        not_text = await client.post(
            "/echo", content=b"\xff\xfe", headers={"content-type": "application/json"}
        )
        assert (not_text.status_code, not_text.json()["code"]) == (422, "validation_error")
        assert not_text.json()["errors"][0]["type"] == "json_invalid"
        not_json = await client.post(
            "/echo", content=b"{", headers={"content-type": "application/json"}
        )
        assert (not_json.status_code, not_json.json()["code"]) == (422, "validation_error")
        wrong_method = await client.delete("/echo")
        assert (wrong_method.status_code, wrong_method.json()["code"]) == (
            405,
            "method_not_allowed",
        )


async def test_oversized_bodies_are_refused_before_the_route(app):
    async with serving(app) as client:
        big = await client.post("/echo", content=b"x" * (1024 * 1024 + 1))
        assert (big.status_code, big.json()["code"]) == (413, "payload_too_large")


async def test_correlation_id_is_echoed_or_created(app):
    async with serving(app) as client:
        given = await client.get("/healthz", headers={"x-correlation-id": "req-123"})
        assert given.headers["x-correlation-id"] == "req-123"
        made = await client.get("/healthz")
        assert len(made.headers["x-correlation-id"]) == 36


async def test_request_transaction_commits_on_success_and_rolls_back_on_error(app, committed):
    a, b = clerk_id(), clerk_id()
    async with serving(app) as client:
        assert (await client.post(f"/users/{a}")).status_code == 200
        failed = await client.post(f"/users/{b}", params={"fail": "true"})
        assert (failed.status_code, failed.json()["code"]) == (409, "demo_conflict")
    async with committed.connect() as conn:
        rows = (
            (await conn.execute(sa.select(User.user_id).where(User.user_id.in_([a, b]))))
            .scalars()
            .all()
        )
    assert rows == [a]


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


async def test_tokens_are_verified_and_bad_ones_get_401(app, signing_keys):
    sub = clerk_id()
    other = KeyPair.generate()
    bad_tokens = {
        "no token": None,
        "garbage": "not-a-jwt",
        "wrong key": other.token(sub),
        "wrong issuer": signing_keys.token(sub, issuer="evil"),
        "expired": signing_keys.token(sub, ttl_seconds=-120),
        "alg none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64({'sub': sub, 'iss': 'scout-test', 'exp': 2**31})}.",
        "hs256 with the public key": jwt.encode(
            {"sub": sub, "iss": "scout-test", "exp": 2**31},
            "public-key-as-secret" * 3,
            algorithm="HS256",
        ),
    }
    async with serving(app) as client:
        ok = await client.get(
            "/whoami", headers={"authorization": f"Bearer {signing_keys.token(sub)}"}
        )
        assert ok.json() == {"sub": sub}
        for name, token in bad_tokens.items():
            headers = {"authorization": f"Bearer {token}"} if token else {}
            response = await client.get("/whoami", headers=headers)
            assert response.status_code == 401, name
            assert response.json()["code"] == "unauthorized", name
            assert response.headers["www-authenticate"] == "Bearer"


async def test_admin_routes_need_an_admin(app, signing_keys, committed):
    admin, member = clerk_id(), clerk_id()
    async with committed.begin() as conn:
        await conn.execute(
            sa.insert(User),
            [{"user_id": admin, "is_admin": True}, {"user_id": member, "is_admin": False}],
        )
    async with serving(app) as client:
        denied = await client.get(
            "/admin-only", headers={"authorization": f"Bearer {signing_keys.token(member)}"}
        )
        assert (denied.status_code, denied.json()["code"]) == (403, "admin_required")
        allowed = await client.get(
            "/admin-only", headers={"authorization": f"Bearer {signing_keys.token(admin)}"}
        )
        assert allowed.json() == {"admin": admin}


async def test_an_exhausted_pool_answers_503_not_500(service_settings):
    """Every pooled connection held elsewhere: the request waits ``DB_POOL_TIMEOUT_SECONDS``
    for one, then answers 503 (retryable) instead of hanging or failing with a 500."""
    settings = service_settings.model_copy(
        update={"db_pool_size": 1, "db_pool_timeout_seconds": 0.5}
    )
    app = create_app("identity", routers=[demo_router()], settings=settings)
    async with serving(app) as client:
        engine = app.state.engine
        held = [await engine.connect() for _ in range(engine.pool.size())]
        try:
            answer = await client.post(f"/users/{clerk_id()}")
        finally:
            for conn in held:
                await conn.close()
        assert answer.status_code == 503, answer.text
        assert answer.json()["code"] == "dependency_unavailable"
        assert (await client.post(f"/users/{clerk_id()}")).status_code == 200
