"""Schemathesis hooks loaded by the fuzz test (SCHEMATHESIS_HOOKS=tests.reliability.st_hooks):
the checks every response must pass, and extreme integers sent on purpose."""

from typing import Any

import hypothesis.strategies as st
import schemathesis

# Past every bound Scout declares, past Postgres' bigint, past a 64-bit JSON encoder: each must
# be a 422, never a 500 (an overflow in orjson or "bigint out of range" in the database).
EXTREMES = (2**63 - 1, 2**63, 10**20, -(2**63) - 1, -(10**20), 2**31)


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


def with_extreme(value: Any, extreme: int) -> tuple[Any, bool]:
    """``value`` with every integer in it (at any depth) replaced by ``extreme``; whether any was."""
    if isinstance(value, bool):
        return value, False
    if isinstance(value, int):
        return extreme, True
    if isinstance(value, dict):
        pairs = {k: with_extreme(v, extreme) for k, v in value.items()}
        return {k: v for k, (v, _) in pairs.items()}, any(c for _, c in pairs.values())
    if isinstance(value, list):
        items = [with_extreme(v, extreme) for v in value]
        return [v for v, _ in items], any(c for _, c in items)
    return value, False


def extreme_variants(case):
    """``case`` itself, then one copy per :data:`EXTREMES` value with every integer of its
    query, path and body replaced by it (none when the case has no integer)."""
    variants = [case]
    for extreme in EXTREMES:
        query, in_query = with_extreme(case.query, extreme)
        path, in_path = with_extreme(case.path_parameters, extreme)
        body, in_body = with_extreme(case.body, extreme)
        if in_query or in_path or in_body:
            variant = case.derive(query=query, keep_auth=True)
            variant.path_parameters = path
            if in_body:
                variant.body = body
            variants.append(variant)
    return variants


@schemathesis.hook
def flatmap_case(context, case):
    """Each generated case, or the same request with extreme integers (chosen by the generator
    like any other value, so a share of every operation's requests carries them)."""
    return st.sampled_from(extreme_variants(case))
