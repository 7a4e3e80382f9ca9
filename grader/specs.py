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
    # train.py's wall-clock budget: the reference solutions train in 5-15 s here (sklearn's
    # import included, on a busy 2-core machine); an endless train.py holds a grading slot
    # this long, not more
    train_seconds: float = 90.0
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
    # what the spec grades, in words ("the credit-card homework")
    title: str = ""

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
    "gender",
    "seniorcitizen",
    "partner",
    "dependents",
    "phoneservice",
    "multiplelines",
    "internetservice",
    "onlinesecurity",
    "onlinebackup",
    "deviceprotection",
    "techsupport",
    "streamingtv",
    "streamingmovies",
    "contract",
    "paperlessbilling",
    "paymentmethod",
)


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
    title="the churn service of the lessons",
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
    title="the credit-card homework",
)

SPECS: dict[str, Spec] = {spec.name: spec for spec in (CHURN, CREDIT)}


def dataset_variables() -> list[tuple[str, str]]:
    """(path, variable) of each dataset variable set here: what to show instead of the path."""
    return [(os.environ[s.env_var], s.env_var) for s in SPECS.values() if os.environ.get(s.env_var)]
