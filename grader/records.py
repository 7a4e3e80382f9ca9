"""The records the grader sends, drawn from a spec's data: valid ones (inside the ranges the
assignment states) and invalid ones of each kind, public or from the instructor's seed."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any

from grader.specs import Dataset, Record, Spec


@dataclass(frozen=True)
class BadRequest:
    """An invalid request body and what is wrong with it (the field a 422 should name)."""

    kind: str
    field: str
    body: Any
    why: str


def in_ranges(spec: Spec, record: Record) -> bool:
    """Is every number of the record inside the spec's stated range?"""
    return all(low <= record[name] <= high for name, (low, high) in spec.ranges.items())


def valid_records(spec: Spec, data: Dataset, rng: random.Random, n: int) -> list[Record]:
    """n valid records: half real held-out rows, half new combinations, all inside the ranges
    the assignment states (else the data's own range)."""
    cats = spec.categories(data)
    rows = [r for r in data.records if in_ranges(spec, r)]
    records = [dict(r) for r in rng.sample(rows, n // 2)]
    for _ in range(n - len(records)):
        record: Record = {name: rng.choice(cats[name]) for name in spec.categorical}
        for name in spec.numerical:
            values = [r[name] for r in rows]
            low, high = spec.ranges.get(name, (min(values), max(values)))
            if name in spec.integer_numerical:
                record[name] = rng.randint(math.ceil(low), math.floor(high))
            else:
                record[name] = round(rng.uniform(float(low), float(high)), 2)
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
    raise ValueError(kind)


KINDS = ("unknown_field", "missing_field", "wrong_type", "unknown_category", "negative_number")


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
    """NaN and Infinity for the last float field (only for specs that ask for a 422 there):
    a model without allow_inf_nan=False passes them to scikit-learn, which answers 500."""
    floats = [n for n in spec.numerical if n not in spec.integer_numerical]
    if not spec.probe_non_finite or not floats:
        return []
    return [bad_request(spec, kind, floats[-1], spec.example) for kind in ("nan", "infinity")]


def seeded_bad_requests(spec: Spec, data: Dataset, rng: random.Random, n: int) -> list[BadRequest]:
    """n invalid requests drawn from the seed: random kind, random field, random base record."""
    out = []
    rows = [r for r in data.records if in_ranges(spec, r)]
    for _ in range(n):
        kind = rng.choice(KINDS)
        base = rng.choice(rows)
        if kind == "unknown_field":
            name = rng.choice(["extra", "comment", "id", "score", "note"]) + str(rng.randint(1, 99))
        elif kind == "unknown_category":
            name = rng.choice(spec.categorical)
        elif kind == "negative_number":
            name = rng.choice(spec.numerical)
        else:
            name = rng.choice(spec.features)
        out.append(bad_request(spec, kind, name, base))
    return out
