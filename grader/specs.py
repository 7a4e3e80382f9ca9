"""What a submission is graded against: dataset, features, request and response names, floors.

A spec also owns the preprocessing of its dataset for the grader's held-out set, and draws the
seeded probes (extra valid and invalid requests) from it. The grader reads the CSV itself (it is
not student data); it never runs student code for this.
"""

from __future__ import annotations

import csv
import hashlib
import math
import os
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Record = dict[str, Any]


@dataclass(frozen=True)
class Dataset:
    """A preprocessed dataset: feature records and 0/1 targets, in file order."""

    records: list[Record]
    targets: list[int]


@dataclass(frozen=True)
class Split:
    """The held-out (test) part of `train_test_split(test_size, random_state)`."""

    train: Dataset
    test: Dataset


@dataclass(frozen=True)
class Spec:
    """One graded problem (the churn lessons, the credit-card homework)."""

    name: str
    env_var: str
    dataset_file: str
    target: str
    numerical: tuple[str, ...]
    categorical: tuple[str, ...]
    response_probability: str
    response_label: str
    example: Record
    preprocess: Callable[[list[dict[str, str]]], Dataset]
    threshold: float = 0.5
    auc_floor: float = 0.80
    port: int = 9696
    ping_path: str = "/ping"
    predict_path: str = "/predict"
    test_size: float = 0.2
    random_state: int = 1
    train_seconds: float = 300.0
    # categorical fields whose values are integers (e.g. seniorcitizen 0/1)
    integer_categorical: tuple[str, ...] = ()
    # numerical fields that must be whole numbers
    integer_numerical: tuple[str, ...] = field(default_factory=tuple)
    # sha256 of the dataset: the scripts' download cache is used only if it matches
    dataset_sha256: str = ""
    # the ranges the assignment states for valid requests: the grader's valid records (public
    # and seeded) stay inside them, so a service that enforces them loses nothing
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)
    # also send NaN and Infinity for a number (the homework asks for a 422 there)
    probe_non_finite: bool = False
    # columns of the CSV that leak the target (the model must not use them)
    leaky: tuple[str, ...] = ()

    @property
    def features(self) -> tuple[str, ...]:
        return self.categorical + self.numerical

    def dataset_path(self) -> Path:
        """The CSV, found as the course's scripts find it: the spec's environment variable,
        else the download cache train.py fills (~/.cache/deploy-course/, checksum verified).

        Raises `DatasetMissing` (one message for the whole run) if neither is there."""
        value = os.environ.get(self.env_var)
        if value:
            path = Path(value).expanduser().resolve()
            if not path.is_file():
                raise DatasetMissing(
                    f"{self.env_var}={value} is not a file: point it at {self.dataset_file}"
                )
            return path
        cached = self.cache_path()
        if cached.is_file() and (not self.dataset_sha256 or _sha256(cached) == self.dataset_sha256):
            return cached
        raise DatasetMissing(
            f"the grader needs {self.dataset_file} to build its held-out set: set "
            f"{self.env_var}=/path/to/{self.dataset_file}, or run train.py once with network "
            f"access (it caches the file in {cached.parent})"
        )

    def cache_path(self) -> Path:
        """Where the course's train.py scripts cache the downloaded CSV."""
        return Path.home() / ".cache" / "deploy-course" / self.dataset_file

    def load(self, path: Path | None = None) -> Dataset:
        with (path or self.dataset_path()).open(newline="", encoding="utf-8") as f:
            return self.preprocess(list(csv.DictReader(f)))

    def split(self, data: Dataset) -> Split:
        return split(data, self.test_size, self.random_state)

    def categories(self, data: Dataset) -> dict[str, list[Any]]:
        """Allowed values of each categorical feature, as seen in the data."""
        return {name: sorted({r[name] for r in data.records}, key=str) for name in self.categorical}


class DatasetMissing(FileNotFoundError):
    """The dataset is nowhere to be found: a setup problem of the run, not of a submission."""


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def split(data: Dataset, test_size: float, random_state: int) -> Split:
    """The same rows as scikit-learn's `train_test_split(test_size=..., random_state=...)`.

    ShuffleSplit draws `RandomState(random_state).permutation(n)`; the first ceil(test_size*n)
    indices are the test part. numpy alone reproduces it, without importing scikit-learn.
    """
    import numpy as np

    n = len(data.records)
    n_test = math.ceil(test_size * n)
    order = np.random.RandomState(random_state).permutation(n)
    test_idx, train_idx = order[:n_test], order[n_test:]

    def take(idx: Any) -> Dataset:
        return Dataset([data.records[i] for i in idx], [data.targets[i] for i in idx])

    return Split(train=take(train_idx), test=take(test_idx))


# -- churn -------------------------------------------------------------------------------
CHURN_NUMERICAL = ("tenure", "monthlycharges", "totalcharges")
CHURN_CATEGORICAL = (
    "gender", "seniorcitizen", "partner", "dependents", "phoneservice", "multiplelines",
    "internetservice", "onlinesecurity", "onlinebackup", "deviceprotection", "techsupport",
    "streamingtv", "streamingmovies", "contract", "paperlessbilling", "paymentmethod",
)  # fmt: skip


def _normalise(text: str) -> str:
    return text.lower().replace(" ", "_")


def preprocess_churn(rows: list[dict[str, str]]) -> Dataset:
    """The course's preprocessing: lower case, "_" for spaces, blank totalcharges → 0."""
    records, targets = [], []
    for raw in rows:
        row = {_normalise(k): v for k, v in raw.items()}
        record: Record = {}
        for name in CHURN_CATEGORICAL:
            record[name] = int(row[name]) if name == "seniorcitizen" else _normalise(row[name])
        record["tenure"] = int(row["tenure"])
        record["monthlycharges"] = float(row["monthlycharges"])
        try:
            record["totalcharges"] = float(row["totalcharges"])
        except ValueError:
            record["totalcharges"] = 0.0
        records.append(record)
        targets.append(1 if _normalise(row["churn"]) == "yes" else 0)
    return Dataset(records, targets)


CHURN = Spec(
    name="churn",
    env_var="CHURN_DATA",
    dataset_file="WA_Fn-UseC_-Telco-Customer-Churn.csv",
    target="churn",
    numerical=CHURN_NUMERICAL,
    categorical=CHURN_CATEGORICAL,
    response_probability="churn_probability",
    response_label="churn",
    example={
        "gender": "female",
        "seniorcitizen": 0,
        "partner": "yes",
        "dependents": "no",
        "phoneservice": "no",
        "multiplelines": "no_phone_service",
        "internetservice": "dsl",
        "onlinesecurity": "no",
        "onlinebackup": "yes",
        "deviceprotection": "no",
        "techsupport": "no",
        "streamingtv": "no",
        "streamingmovies": "no",
        "contract": "month-to-month",
        "paperlessbilling": "yes",
        "paymentmethod": "electronic_check",
        "tenure": 1,
        "monthlycharges": 29.85,
        "totalcharges": 29.85,
    },
    preprocess=preprocess_churn,
    auc_floor=0.80,
    dataset_sha256="88be4b93fbe0cc83421af1c503794c97c342eca914c1576db7c276e61d61358a",
    integer_categorical=("seniorcitizen",),
    integer_numerical=("tenure",),
)


# -- credit card (homework) ----------------------------------------------------------------
CREDIT_NUMERICAL = ("reports", "age", "income", "dependents", "months", "majorcards", "active")
CREDIT_CATEGORICAL = ("owner", "selfemp")
CREDIT_INTEGER = ("reports", "dependents", "months", "majorcards", "active")
# The applicants the grader sends (public and hidden) lie inside these ranges, which
# homework/README.md states: a service may reject what lies outside them.
CREDIT_RANGES: dict[str, tuple[float, float]] = {
    "reports": (0, 14),
    "age": (18, 84),
    "income": (0.2, 13.5),
    "dependents": (0, 6),
    "months": (0, 540),
    "majorcards": (0, 1),
    "active": (0, 46),
}


def preprocess_credit(rows: list[dict[str, str]]) -> Dataset:
    """Target `card` yes → 1; `share` and `expenditure` leak the target and are dropped."""
    records, targets = [], []
    for row in rows:
        record: Record = {name: row[name].strip().lower() for name in CREDIT_CATEGORICAL}
        for name in CREDIT_NUMERICAL:
            record[name] = int(row[name]) if name in CREDIT_INTEGER else float(row[name])
        records.append(record)
        targets.append(1 if row["card"].strip().lower() == "yes" else 0)
    return Dataset(records, targets)


CREDIT = Spec(
    name="credit",
    env_var="CREDIT_DATA",
    dataset_file="AER_credit_card_data.csv",
    target="card",
    numerical=CREDIT_NUMERICAL,
    categorical=CREDIT_CATEGORICAL,
    response_probability="card_probability",
    response_label="card",
    example={
        "reports": 0,
        "age": 45.5,
        "income": 3.2,
        "owner": "yes",
        "selfemp": "no",
        "dependents": 5,
        "months": 168,
        "majorcards": 0,
        "active": 9,
    },
    preprocess=preprocess_credit,
    auc_floor=0.80,
    integer_numerical=CREDIT_INTEGER,
    dataset_sha256="93a46ce44e0542e5094e9675440fcc36e9a018c2ec879e868726f717ebd47c21",
    ranges=CREDIT_RANGES,
    probe_non_finite=True,
    leaky=("share", "expenditure"),
)

SPECS: dict[str, Spec] = {spec.name: spec for spec in (CHURN, CREDIT)}


# -- seeded probes --------------------------------------------------------------------------
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


def bad_request(spec: Spec, data: Dataset, kind: str, name: str, base: Record) -> BadRequest:
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


def public_bad_requests(spec: Spec, data: Dataset) -> list[BadRequest]:
    """The fixed, public invalid requests: one of each kind, derived from the example."""
    first_cat = next(c for c in spec.categorical if c not in spec.integer_categorical)
    first_num = spec.numerical[0]
    return [
        bad_request(spec, data, "unknown_field", "customer_name", spec.example),
        bad_request(spec, data, "missing_field", first_num, spec.example),
        bad_request(spec, data, "wrong_type", first_num, spec.example),
        bad_request(spec, data, "unknown_category", first_cat, spec.example),
        bad_request(spec, data, "negative_number", first_num, spec.example),
        *non_finite_requests(spec, data),
    ]


def non_finite_requests(spec: Spec, data: Dataset) -> list[BadRequest]:
    """NaN and Infinity for the first float field (only for specs that ask for a 422 there):
    a model without allow_inf_nan=False passes them to scikit-learn, which answers 500."""
    floats = [n for n in spec.numerical if n not in spec.integer_numerical]
    if not spec.probe_non_finite or not floats:
        return []
    return [bad_request(spec, data, kind, floats[-1], spec.example) for kind in ("nan", "infinity")]


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
        out.append(bad_request(spec, data, kind, name, base))
    return out
