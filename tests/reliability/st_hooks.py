"""Schemathesis checks loaded by the fuzz test (SCHEMATHESIS_HOOKS=tests.reliability.st_hooks)."""

import schemathesis


@schemathesis.check
def error_has_a_code(ctx, response, case):
    """Every 4xx/5xx answers JSON with a stable machine-readable ``code`` and a ``detail``."""
    if response.status_code < 400:
        return None
    try:
        body = response.json()
    except ValueError:
        raise AssertionError(f"{response.status_code} without a JSON body") from None
    if not isinstance(body, dict) or not isinstance(body.get("code"), str) or not body["code"]:
        raise AssertionError(f"{response.status_code} without a `code`: {body!r}"[:300])
    if not isinstance(body.get("detail"), str):
        raise AssertionError(f"{response.status_code} without a `detail`: {body!r}"[:300])
    return None


# Answers that come from routing, not from an operation: a path that matches no route.
ROUTING_ERRORS = {(404, "not_found"), (405, "method_not_allowed")}


@schemathesis.check
def error_is_documented(ctx, response, case):
    """An error's status is one the operation documents, and its ``code`` one of the codes
    that status lists (``x-error-codes``): the description tells the truth."""
    if response.status_code < 400:
        return None
    code = response.json().get("code")
    if (response.status_code, code) in ROUTING_ERRORS:
        return None
    responses = case.operation.definition.raw.get("responses", {})
    documented = responses.get(str(response.status_code))
    label = f"{case.method.upper()} {case.operation.path}"
    if documented is None:
        raise AssertionError(f"{label} answered {response.status_code} ({code}), undocumented")
    if code not in documented.get("x-error-codes", {}):
        listed = sorted(documented.get("x-error-codes", {}))
        raise AssertionError(
            f"{label} answered {response.status_code} {code!r}; documented codes: {listed}"
        )
    return None
