"""Stage 4 (pydantic): every kind of bad input gets 422 naming the field, never 500; the
OpenAPI schema describes request and response with types and allowed values."""

from __future__ import annotations

from typing import Any

from grader.checks import check, expect
from grader.contracts.common import answer_text, hint, log_tail, mentions, server
from grader.grading.requests import BAD, MALFORMED, OPENAPI, SEEDED_BAD
from grader.grading.session import Grading
from grader.records import TOKENS, BadRequest

FIXES = {
    "unknown_field": "forbid unknown fields: model_config = ConfigDict(extra='forbid')",
    "missing_field": "make every feature a required field of the request model",
    "wrong_type": "type each field (int/float for numbers, Literal[...] for categories)",
    "unknown_category": "type each categorical field as Literal[...] of its allowed values",
    "negative_number": "constrain numbers, e.g. Field(ge=0)",
}


def _bad(grading: Grading, request_id: str, bad: BadRequest) -> str | None:
    answer = server(grading).get(request_id)
    if answer.get("status") == 422:
        if not mentions(answer.get("json"), bad.field):
            return f"a request with {bad.why} got 422, but the error does not name `{bad.field}`"
        return None
    return f"a request with {bad.why} must get 422, got {answer_text(answer)}: {FIXES[bad.kind]}"


def _public(grading: Grading, kind: str) -> None:
    for i, bad in enumerate(grading.records.bad):
        if bad.kind == kind:
            problem = _bad(grading, f"{BAD}{i}", bad)
            expect(problem is None, str(problem))


@check("4.1", "unknown field → 422", points=1)
def test_unknown_field(grading: Grading) -> None:
    _public(grading, "unknown_field")


@check("4.2", "missing field → 422", points=1)
def test_missing_field(grading: Grading) -> None:
    _public(grading, "missing_field")


@check("4.3", "wrong type → 422", points=1)
def test_wrong_type(grading: Grading) -> None:
    _public(grading, "wrong_type")


@check("4.4", "unknown category → 422", points=1)
def test_unknown_category(grading: Grading) -> None:
    _public(grading, "unknown_category")


@check("4.5", "negative number → 422", points=1)
def test_negative_number(grading: Grading) -> None:
    _public(grading, "negative_number")


@check("4.6", "no bad input gives a server error (5xx)", points=1)
def test_no_500(grading: Grading) -> None:
    run = server(grading)
    p = grading.records
    cases: list[tuple[str, BadRequest | None, str]] = [
        (f"{BAD}{i}", b, b.why) for i, b in enumerate(p.bad)
    ]
    cases += [(f"{SEEDED_BAD}{i}", b, b.why) for i, b in enumerate(p.seeded_bad)]
    cases += [
        (rid, None, f"the body {extra.get('raw', extra.get('body'))!r}")
        for rid, extra in MALFORMED.items()
    ]
    for rid, bad, why in cases:
        answer = run.get(rid)
        status = answer.get("status")
        expect(
            isinstance(status, int) and status < 500,
            f"a request with {why} got {answer_text(answer)}: bad input is the client's "
            f"error (4xx), never a crash (500); {_fix(bad)}{hint(run)}{log_tail(run)}",
        )


def _fix(bad: BadRequest | None) -> str:
    """How to answer 422 instead of 500 to this kind of bad input."""
    kind = bad.kind if bad is not None else ""
    if kind in ("nan", "infinity"):
        return (
            "Pydantic reads the string as a float, and scikit-learn cannot score NaN or "
            "Infinity: set model_config = ConfigDict(allow_inf_nan=False) and bound each "
            "number with Field(ge=..., le=...)"
        )
    if kind in TOKENS:
        return (
            "reject it with model_config = ConfigDict(allow_inf_nan=False) and bounds "
            "(Field(ge=..., le=...)), and answer the 422 without echoing the input: FastAPI's "
            "own 422 repeats it, and NaN or Infinity cannot be written as JSON, so the 422 "
            "itself fails (500). Lesson 08-hardening, section 3 (`NaN` and `Infinity`), shows "
            "the exception handler that does it"
        )
    return "validate the request with a Pydantic model"


def _schema(openapi: dict[str, Any], node: Any) -> dict[str, Any]:
    """Resolve a $ref (and a single-item allOf/anyOf wrapper) in the OpenAPI document."""
    for _ in range(10):
        if not isinstance(node, dict):
            return {}
        if "$ref" in node:
            ref = str(node["$ref"]).removeprefix("#/").split("/")
            target: Any = openapi
            for part in ref:
                target = target.get(part, {}) if isinstance(target, dict) else {}
            node = target
            continue
        for key in ("allOf",):
            if isinstance(node.get(key), list) and len(node[key]) == 1:
                node = node[key][0]
                break
        else:
            return node
    return {}


def _values(openapi: dict[str, Any], prop: Any) -> set[Any] | None:
    """Allowed values of a property (enum, const, or anyOf of those), or None if unrestricted."""
    prop = _schema(openapi, prop)
    if "enum" in prop:
        return set(prop["enum"])
    if "const" in prop:
        return {prop["const"]}
    if isinstance(prop.get("anyOf"), list):
        found: set[Any] = set()
        for option in prop["anyOf"]:
            values = _values(openapi, option)
            if values is None:
                return None
            found |= values
        return found
    if prop.get("type") == "integer" and "minimum" in prop and "maximum" in prop:
        return set(range(int(prop["minimum"]), int(prop["maximum"]) + 1))
    return None


def _openapi(grading: Grading) -> tuple[dict[str, Any], dict[str, Any]]:
    answer = server(grading).get(OPENAPI)
    openapi = answer.get("json")
    expect(
        answer.get("status") == 200 and isinstance(openapi, dict),
        f"GET /openapi.json must answer the schema, got {answer_text(answer)}",
    )
    assert isinstance(openapi, dict)
    post = openapi.get("paths", {}).get(grading.spec.predict_path, {}).get("post")
    expect(isinstance(post, dict), f"the OpenAPI schema has no POST {grading.spec.predict_path}")
    return openapi, post


@check("4.7", "OpenAPI describes the request: types and allowed values", points=1)
def test_openapi_request(grading: Grading) -> None:
    openapi, post = _openapi(grading)
    content = post.get("requestBody", {}).get("content", {}).get("application/json", {})
    schema = _schema(openapi, content.get("schema"))
    props = schema.get("properties", {})
    spec = grading.spec
    missing = [f for f in spec.features if f not in props]
    expect(
        not missing,
        f"the request schema lacks {missing}: declare every feature as a field "
        "of a Pydantic model and take that model as the endpoint's parameter",
    )
    for name in spec.numerical:
        prop = _schema(openapi, props[name])
        types = {prop.get("type")} | {
            o.get("type") for o in prop.get("anyOf", []) if isinstance(o, dict)
        }
        expect(
            types & {"number", "integer"},
            f"`{name}` has no numeric type in the schema: declare it as int or float",
        )
    for name in spec.categorical:
        values = _values(openapi, props[name])
        expected = set(grading.records.categories[name])
        expect(
            values is not None and expected <= values,
            f"`{name}` should list its allowed values {sorted(expected, key=str)} in the "
            f"schema (found {values}): declare it as Literal[...]",
        )


@check("4.8", "OpenAPI describes the response fields and types", points=1)
def test_openapi_response(grading: Grading) -> None:
    openapi, post = _openapi(grading)
    ok = post.get("responses", {}).get("200", {})
    schema = _schema(openapi, ok.get("content", {}).get("application/json", {}).get("schema"))
    props = schema.get("properties", {})
    spec = grading.spec
    prob = _schema(openapi, props.get(spec.response_probability))
    label = _schema(openapi, props.get(spec.response_label))
    expect(
        prob.get("type") == "number" and label.get("type") == "boolean",
        f"the 200 response schema should have {spec.response_probability!r}: number and "
        f"{spec.response_label!r}: boolean; declare a response model (found "
        f"{sorted(props)})",
    )


@check("4.9", "seeded bad inputs → 422 naming the field", points=1, hidden=True)
def test_seeded_bad(grading: Grading) -> None:
    for i, bad in enumerate(grading.records.seeded_bad):
        problem = _bad(grading, f"{SEEDED_BAD}{i}", bad)
        expect(problem is None, str(problem))
