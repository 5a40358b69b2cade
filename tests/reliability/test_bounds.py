"""Every number a client can send is bounded: the OpenAPI documents say so for every operation,
and values past the bounds are 422 ``validation_error``, never a 500 from the database or the
JSON encoder."""

import importlib
from typing import Any

import pytest
import schemathesis
from sqlalchemy.ext.asyncio import AsyncSession

from shared.worker import SERVICES

from ..factories import make_campaign, make_job, make_user
from ..support.services import running_api
from .st_hooks import EXTREMES, extreme_variants

NUMERIC = {"integer", "number"}


def _numbers(schema: Any, doc: dict, where: str, seen: tuple[str, ...] = ()) -> list[tuple]:
    """``(where, schema)`` of every integer or number in ``schema``, $refs followed."""
    if not isinstance(schema, dict):
        return []
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        if name in seen:
            return []
        return _numbers(doc["components"]["schemas"][name], doc, where, (*seen, name))
    found = []
    if schema.get("type") in NUMERIC:
        found.append((where, schema))
    for key in ("anyOf", "oneOf", "allOf"):
        for branch in schema.get(key, []):
            found += _numbers(branch, doc, where, seen)
    for name, prop in schema.get("properties", {}).items():
        found += _numbers(prop, doc, f"{where}.{name}", seen)
    if "items" in schema:
        found += _numbers(schema["items"], doc, f"{where}[]", seen)
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        found += _numbers(extra, doc, f"{where}{{}}", seen)
    return found


def _document(service: str) -> dict:
    return importlib.import_module(f"services.{service}.api").create_app().openapi()


def numbers_of(doc: dict) -> list[tuple[str, dict]]:
    """Every numeric parameter and body field of every operation of ``doc``."""
    found = []
    for path, operations in doc["paths"].items():
        for method, op in operations.items():
            name = f"{method.upper()} {path}"
            for param in op.get("parameters", []):
                where = f"{name} {param['in']}:{param['name']}"
                found += _numbers(param.get("schema", {}), doc, where)
            for content in op.get("requestBody", {}).get("content", {}).values():
                found += _numbers(content.get("schema", {}), doc, f"{name} body")
    return found


@pytest.mark.parametrize("service", SERVICES)
def test_every_numeric_parameter_and_field_has_both_bounds(service):
    numbers = numbers_of(_document(service))
    unbounded = [
        where
        for where, schema in numbers
        if not ({"maximum", "exclusiveMaximum"} & schema.keys())
        or not ({"minimum", "exclusiveMinimum"} & schema.keys())
    ]
    assert unbounded == []


def test_the_walker_finds_the_numbers_it_must_check():
    """The bounds test above cannot pass by finding nothing: known fields are seen."""
    found = {where for where, _ in numbers_of(_document("scraping"))}
    assert "GET /jobs/{job_id}/results query:offset" in found
    assert "POST /jobs body.target_results" in found
    lists = {where for where, _ in numbers_of(_document("campaign"))}
    assert "POST /lists/{list_id}/items body.items[].followers" in lists


@pytest.mark.parametrize(
    "offset", ["99999999999999999999", "9223372036854775807", "1000000001", "-1"]
)
async def test_results_offsets_past_the_bound_are_422(
    committed, service_settings, signing_keys, offset
):
    async with AsyncSession(committed, expire_on_commit=False) as session, session.begin():
        user = await make_user(session)
        job = await make_job(session, await make_campaign(session, user))
    headers = {"Authorization": f"Bearer {signing_keys.token(user.user_id)}"}
    async with running_api("scraping", service_settings) as api:
        response = await api.get(f"/jobs/{job.id}/results?offset={offset}", headers=headers)
        at_bound = await api.get(f"/jobs/{job.id}/results?offset=1000000000", headers=headers)
    assert (response.status_code, response.json()["code"]) == (422, "validation_error")
    assert at_bound.status_code == 200, at_bound.text
    assert at_bound.json()["items"] == []


def test_the_fuzzer_sends_every_extreme_integer_in_query_path_and_body():
    schema = schemathesis.openapi.from_dict(_document("campaign"))
    page = schema["/campaigns"]["GET"].Case(query={"page": 2, "page_size": 20, "status": "draft"})
    queries = [v.query for v in extreme_variants(page)[1:]]
    assert queries == [{"page": n, "page_size": n, "status": "draft"} for n in EXTREMES]
    add = schema["/lists/{list_id}/items"]["POST"].Case(
        path_parameters={"list_id": "x"},
        body={"items": [{"platform": "tiktok", "followers": 10, "pinned": True, "meta": [1]}]},
    )
    bodies = [v.body["items"][0] for v in extreme_variants(add)[1:]]
    assert bodies == [
        {"platform": "tiktok", "followers": n, "pinned": True, "meta": [n]} for n in EXTREMES
    ]
