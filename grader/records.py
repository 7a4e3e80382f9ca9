"""The records the grader sends, drawn from a spec's data: valid ones (inside the ranges the
assignment states) and invalid ones of each kind, public or from the instructor's seed."""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from typing import Any

from grader.specs import Dataset, Record, Spec

# Numbers that are not numbers, sent bare in the JSON body: what Python's
# json.dumps(float("nan")) sends (Python's JSON reader takes them, and 1e400, as floats).
TOKENS = {"nan_token": "NaN", "infinity_token": "Infinity", "huge_number": "1e400"}
_PLACEHOLDER = "\0grader-token\0"


@dataclass(frozen=True)
class BadRequest:
    """An invalid request body and what is wrong with it (the field a 422 should name).
    `raw`: the body as sent, when JSON cannot hold it (a bare NaN); else `body` is sent."""

    kind: str
    field: str
    body: Any
    why: str
    raw: str | None = None


def in_ranges(spec: Spec, record: Record) -> bool:
    """Is every number of the record inside the spec's stated range?"""
    return all(low <= record[name] <= high for name, (low, high) in spec.ranges.items())


def bounds(spec: Spec, name: str, rows: list[Record]) -> tuple[float, float]:
    """The lowest and highest valid value of a numerical field: the range the assignment
    states, else the data's own; whole numbers for an integer field."""
    values = [r[name] for r in rows]
    low, high = spec.ranges.get(name, (min(values), max(values)))
    if name in spec.integer_numerical:
        return math.ceil(low), math.floor(high)
    return float(low), float(high)


def boundary_records(spec: Spec, data: Dataset, rng: random.Random) -> list[Record]:
    """What every seed sends: each number at the lowest and at the highest value of its range
    (one field at a time, the others those of a real row), and among them every value of every
    categorical field. A service with one wrong bound, or one missing category, then fails
    under every seed alike, never under some seeds only."""
    cats = spec.categories(data)
    rows = [r for r in data.records if in_ranges(spec, r)]
    records: list[Record] = []
    for name in spec.numerical:
        for value in bounds(spec, name, rows):
            records.append({**rng.choice(rows), name: value})
    most = max((len(values) for values in cats.values()), default=0)
    while len(records) < most:
        records.append(dict(rng.choice(rows)))
    for k, name in enumerate(spec.categorical):
        for i, value in enumerate(cats[name]):
            records[(i + k) % len(records)][name] = value
    return records


def valid_records(spec: Spec, data: Dataset, rng: random.Random, n: int) -> list[Record]:
    """The boundary records, then n more: half real held-out rows, half new combinations, all
    inside the ranges the assignment states (else the data's own range)."""
    cats = spec.categories(data)
    rows = [r for r in data.records if in_ranges(spec, r)]
    records = boundary_records(spec, data, rng)
    records += [dict(r) for r in rng.sample(rows, n // 2)]
    for _ in range(n - n // 2):
        record: Record = {name: rng.choice(cats[name]) for name in spec.categorical}
        for name in spec.numerical:
            low, high = bounds(spec, name, rows)
            if name in spec.integer_numerical:
                record[name] = rng.randint(int(low), int(high))
            else:
                record[name] = round(rng.uniform(low, high), 2)
        records.append(record)
    return records


def bad_request(spec: Spec, kind: str, name: str, base: Record) -> BadRequest:
    """One invalid variant of `base`: kind is unknown_field, missing_field, wrong_type,
    unknown_category or negative_number."""
    body = dict(base)
    if kind == "unknown_field":
        body[name] = "yes"
        return BadRequest(kind, name, body, f"an unknown field `{name}`")
    if kind == "missing_field":
        del body[name]
        return BadRequest(kind, name, body, f"the field `{name}` missing")
    if kind == "wrong_type":
        body[name] = "not-a-number" if name in spec.numerical else 3.5
        if name in spec.integer_categorical:
            body[name] = "not-a-number"
        return BadRequest(kind, name, body, f"`{name}` of the wrong type ({body[name]!r})")
    if kind == "unknown_category":
        body[name] = 7 if name in spec.integer_categorical else "no_such_value"
        return BadRequest(kind, name, body, f"`{name}` with an unknown value ({body[name]!r})")
    if kind == "negative_number":
        body[name] = -5 if name in spec.integer_numerical else -5.5
        return BadRequest(kind, name, body, f"`{name}` negative ({body[name]!r})")
    if kind in ("nan", "infinity"):
        # As a string: Pydantic's lax mode reads "NaN" as a float, so a model without
        # allow_inf_nan=False (or bounds) hands NaN to scikit-learn, which fails (500); a strict
        # one answers 422, and its error body (which echoes the string) is still valid JSON.
        body[name] = "NaN" if kind == "nan" else "Infinity"
        return BadRequest(kind, name, body, f"`{name}` = {body[name]!r}")
    if kind in TOKENS:
        # Bare: Python's JSON reader makes a float of it, which a strict model rejects; but
        # FastAPI's own 422 echoes the input, and NaN cannot be written as JSON (500).
        token = TOKENS[kind]
        body[name] = _PLACEHOLDER
        raw = json.dumps(body).replace(json.dumps(_PLACEHOLDER), token)
        body[name] = token
        why = f"`{name}` = {token} (bare in the JSON, as json.dumps(float('nan')) sends NaN)"
        if kind == "huge_number":
            why = f"`{name}` = {token} (a number too large for a float: Python reads Infinity)"
        return BadRequest(kind, name, body, why, raw)
    raise ValueError(kind)


KINDS = ("unknown_field", "missing_field", "wrong_type", "unknown_category", "negative_number")
NON_FINITE = ("nan", "infinity", *TOKENS)


def public_bad_requests(spec: Spec) -> list[BadRequest]:
    """The fixed, public invalid requests: one of each kind, derived from the example."""
    first_cat = next(c for c in spec.categorical if c not in spec.integer_categorical)
    first_num = spec.numerical[0]
    return [
        bad_request(spec, "unknown_field", "customer_name", spec.example),
        bad_request(spec, "missing_field", first_num, spec.example),
        bad_request(spec, "wrong_type", first_num, spec.example),
        bad_request(spec, "unknown_category", first_cat, spec.example),
        bad_request(spec, "negative_number", first_num, spec.example),
        *non_finite_requests(spec),
    ]


def non_finite_requests(spec: Spec) -> list[BadRequest]:
    """NaN and Infinity for the last float field (only for specs that ask for a 422 there), as
    strings and bare, and 1e400: a model without allow_inf_nan=False passes them to
    scikit-learn, and FastAPI's own 422 cannot echo a bare one: both answer 500."""
    floats = [n for n in spec.numerical if n not in spec.integer_numerical]
    if not spec.probe_non_finite or not floats:
        return []
    return [bad_request(spec, kind, floats[-1], spec.example) for kind in NON_FINITE]


def _unknown_name(rng: random.Random) -> str:
    return rng.choice(["extra", "comment", "id", "score", "note"]) + str(rng.randint(1, 99))


def seeded_bad_requests(
    spec: Spec, data: Dataset, rng: random.Random, n: int = 0
) -> list[BadRequest]:
    """Invalid requests drawn from the seed: every kind on every field it applies to, each on a
    random valid record (so whether a service passes does not depend on which kinds and fields
    a seed happened to draw), then n more of random kind and field."""
    rows = [r for r in data.records if in_ranges(spec, r)]
    every = [("unknown_field", _unknown_name(rng))]
    every += [(kind, name) for kind in ("missing_field", "wrong_type") for name in spec.features]
    every += [("unknown_category", name) for name in spec.categorical]
    every += [("negative_number", name) for name in spec.numerical]
    for _ in range(n):
        kind = rng.choice(KINDS)
        if kind == "unknown_field":
            name = _unknown_name(rng)
        elif kind == "unknown_category":
            name = rng.choice(spec.categorical)
        elif kind == "negative_number":
            name = rng.choice(spec.numerical)
        else:
            name = rng.choice(spec.features)
        every.append((kind, name))
    return [bad_request(spec, kind, name, rng.choice(rows)) for kind, name in every]
