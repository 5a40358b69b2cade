"""Each service's ``/openapi.json`` tells the truth: one error body, summaries, webhooks.

Read from the four running APIs (and billing once more in development, where its local
checkout routes exist). Every operation must have a summary and a description; every error
response it lists must use ``ErrorBody`` and name its codes; input means a documented 422, a
body a documented 413, a bearer token a documented 401 (a webhook's body and headers, which
the route verifies itself, a documented 400 instead of 422); every numeric input has a maximum
(beyond it, 422 — never a number the database cannot hold); webhook routes document their body and
signature headers. The rules are checked over whatever operations exist, so a route added later
is held to them too.
"""

import pytest

from shared.settings import Settings
from shared.web.openapi import error_responses
from tests.support.services import running_api

from .support.http import serving

ERROR_REF = "#/components/schemas/ErrorBody"
SIGNATURE_HEADERS = {
    "/webhooks/stripe": {"stripe-signature"},
    "/webhooks/clerk": {"svix-id", "svix-timestamp", "svix-signature"},
}


def _unbounded(schema: dict, doc: dict, where: str, seen: set[str]) -> list[str]:
    """Every integer or number in ``schema`` (refs followed) without a maximum."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        if name in seen:
            return []
        seen.add(name)
        return _unbounded(doc["components"]["schemas"][name], doc, where, seen)
    found = []
    if schema.get("type") in ("integer", "number") and not (
        "maximum" in schema or "exclusiveMaximum" in schema
    ):
        found.append(where)
    for key in ("anyOf", "oneOf", "allOf"):
        for option in schema.get(key, []):
            found += _unbounded(option, doc, where, seen)
    for name, prop in schema.get("properties", {}).items():
        found += _unbounded(prop, doc, f"{where}.{name}", seen)
    if isinstance(schema.get("items"), dict):
        found += _unbounded(schema["items"], doc, f"{where}[]", seen)
    return found


def operations(doc: dict):
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            yield f"{method.upper()} {path}", path, operation


def problems(doc: dict) -> list[str]:
    """Every way the document breaks the rules, one line each (empty: it tells the truth)."""
    found = []
    if "HTTPValidationError" in str(doc) or "ValidationError" in doc["components"]["schemas"]:
        found.append("FastAPI's HTTPValidationError is still documented")
    body = doc["components"]["schemas"].get("ErrorBody", {})
    if set(body.get("required", ())) != {"code", "detail"} or "errors" not in body.get(
        "properties", {}
    ):
        found.append(f"ErrorBody is not {{code, detail, errors?}}: {body}")
    for name, path, op in operations(doc):
        if not (op.get("summary") or "").strip():
            found.append(f"{name}: no summary")
        if not (op.get("description") or "").strip():
            found.append(f"{name}: no description")
        responses = op.get("responses", {})
        for status, response in responses.items():
            if status[0] not in "45":
                continue
            schema = response.get("content", {}).get("application/json", {}).get("schema", {})
            if schema.get("$ref") != ERROR_REF:
                found.append(f"{name}: {status} does not answer ErrorBody ({schema})")
            if not response.get("x-error-codes"):
                found.append(f"{name}: {status} names no error code")
        params = op.get("parameters", [])
        for param in params:
            for where in _unbounded(param.get("schema", {}), doc, param["name"], set()):
                found.append(f"{name}: numeric input {where} has no maximum")
        body_schema = (
            op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
        )
        if body_schema:
            for where in _unbounded(body_schema, doc, "body", set()):
                found.append(f"{name}: numeric input {where} has no maximum")
        webhook = path.startswith("/webhooks/")  # verifies its raw body itself: 400, never 422
        if (params or "requestBody" in op) and not webhook and "422" not in responses:
            found.append(f"{name}: takes input but documents no 422")
        if "requestBody" in op and "413" not in responses:
            found.append(f"{name}: takes a body but documents no 413")
        if op.get("security") and "401" not in responses:
            found.append(f"{name}: needs a token but documents no 401")
        if webhook:
            content = op.get("requestBody", {}).get("content", {}).get("application/json", {})
            if not content.get("schema"):
                found.append(f"{name}: webhook body not documented")
            required = {p["name"].lower() for p in params if p["in"] == "header" and p["required"]}
            missing = SIGNATURE_HEADERS.get(path, set()) - required
            if missing:
                found.append(f"{name}: signature headers not documented: {sorted(missing)}")
            if "invalid_signature" not in responses.get("400", {}).get("x-error-codes", {}):
                found.append(f"{name}: 400 invalid_signature not documented")
    return found


@pytest.mark.parametrize("service", ["identity", "billing", "campaign", "scraping"])
async def test_every_operation_of_each_service_tells_the_truth(service, service_settings):
    async with running_api(service, service_settings) as client:
        doc = (await client.get("/openapi.json")).json()
    assert len(list(operations(doc))) >= 5
    assert problems(doc) == []


async def test_billing_in_development_documents_its_local_checkout_too(service_settings):
    from services.billing.api import create_app

    settings = service_settings.model_copy(update={"scout_env": "development"})
    async with serving(create_app(settings)) as client:
        doc = (await client.get("/openapi.json")).json()
    assert "/dev/checkout/{session_id}" in doc["paths"]
    assert problems(doc) == []


async def test_documented_errors_name_their_codes():
    from services.campaign.errors import CampaignNotFound, IllegalStatusTransition

    declared = error_responses(CampaignNotFound, IllegalStatusTransition)
    assert set(declared) == {404, 409}
    assert declared[404]["x-error-codes"] == {"campaign_not_found": "No such campaign."}


def test_the_checker_reports_every_broken_rule():
    doc = {
        "components": {"schemas": {"HTTPValidationError": {}, "ErrorBody": {"required": []}}},
        "paths": {
            "/webhooks/stripe": {
                "post": {
                    "summary": "Stripe Webhook",
                    "security": [{"HTTPBearer": []}],
                    "parameters": [{"name": "x", "in": "query", "required": False}],
                    "responses": {
                        "422": {
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/HTTPValidationError"}
                                }
                            }
                        }
                    },
                }
            }
        },
    }
    assert problems(doc) == [
        "FastAPI's HTTPValidationError is still documented",
        "ErrorBody is not {code, detail, errors?}: {'required': []}",
        "POST /webhooks/stripe: no description",
        "POST /webhooks/stripe: 422 does not answer ErrorBody "
        "({'$ref': '#/components/schemas/HTTPValidationError'})",
        "POST /webhooks/stripe: 422 names no error code",
        "POST /webhooks/stripe: needs a token but documents no 401",
        "POST /webhooks/stripe: webhook body not documented",
        "POST /webhooks/stripe: signature headers not documented: ['stripe-signature']",
        "POST /webhooks/stripe: 400 invalid_signature not documented",
    ]


def test_settings_default_to_no_local_billing_outside_development():
    assert Settings(scout_env="development").local_billing
    assert not Settings(scout_env="development", stripe_secret_key="sk_x").local_billing
    assert not Settings(scout_env="test").local_billing
