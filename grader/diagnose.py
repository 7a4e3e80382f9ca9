"""The ML mistakes behind a model's numbers, told in the assignment's own terms.

The grader refits the assignment's model itself (numpy only, never the student's code) on the
training part and on all rows, and compares the student's held-out probabilities with both:
a model that matches the all-rows fit has seen the test rows. A model whose vectorizer knows
the spec's leaking columns was fitted with them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from grader.specs import Dataset, Record, Spec

MATCH = 2e-3  # largest difference in probability that counts as "the same model"


def fit_logistic(X: np.ndarray, y: np.ndarray, c: float = 1.0) -> np.ndarray:
    """L2 logistic regression as scikit-learn defines it (intercept not penalised), by Newton."""
    Xb = np.hstack([X, np.ones((len(X), 1))])
    reg = np.full(Xb.shape[1], 1.0 / c)
    reg[-1] = 0.0
    w = np.zeros(Xb.shape[1])
    for _ in range(100):
        p = 1 / (1 + np.exp(-(Xb @ w)))
        gradient = Xb.T @ (p - y) + reg * w
        hessian = (Xb * (p * (1 - p))[:, None]).T @ Xb + np.diag(reg)
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if np.abs(step).max() < 1e-10:
            break
    return w


def predict(w: np.ndarray, X: np.ndarray) -> np.ndarray:
    return np.asarray(1 / (1 + np.exp(-(np.hstack([X, np.ones((len(X), 1))]) @ w))))


def encode(records: Sequence[Record], columns: Sequence[tuple[str, object]]) -> np.ndarray:
    """As DictVectorizer: a number stays a column, a string becomes one column per value."""
    rows = []
    for r in records:
        rows.append([float(r[n]) if v is None else float(r[n] == v) for n, v in columns])
    return np.array(rows)


def columns_of(records: Sequence[Record]) -> list[tuple[str, object]]:
    columns: set[tuple[str, object]] = set()
    for r in records:
        for name, value in r.items():
            columns.add((name, value) if isinstance(value, str) else (name, None))
    return sorted(columns, key=str)


@dataclass(frozen=True)
class Reference:
    """The assignment's model refitted by the grader, scored on the held-out records."""

    train_fit: list[float]  # fitted on the training part (what the assignment asks)
    all_fit: list[float]  # fitted on every row, the held-out ones included


_CACHE: dict[tuple[str, int], Reference] = {}


def reference(spec: Spec, data: Dataset) -> Reference:
    """The refitted model for this spec and dataset (computed once per process)."""
    key = (spec.name, id(data))
    if key not in _CACHE:
        _CACHE[key] = _reference(spec, data)
    return _CACHE[key]


def _reference(spec: Spec, data: Dataset) -> Reference:
    parts = spec.split(data)
    columns = columns_of(data.records)
    test = encode(parts.test.records, columns)
    fits = []
    for rows in (parts.train, data):
        w = fit_logistic(encode(rows.records, columns), np.array(rows.targets, dtype=float))
        fits.append([float(p) for p in predict(w, test)])
    return Reference(*fits)


def trained_on_all_rows(spec: Spec, data: Dataset, heldout: Sequence[float]) -> bool:
    """Do these held-out probabilities come from the assignment's model fitted on all rows
    (test rows included) rather than on the training part?"""
    ref = reference(spec, data)
    if len(heldout) != len(ref.all_fit):
        return False
    to_all = max(abs(a - b) for a, b in zip(heldout, ref.all_fit, strict=True))
    to_train = max(abs(a - b) for a, b in zip(heldout, ref.train_fit, strict=True))
    return to_all <= MATCH < to_train


def leaking(spec: Spec, features: Sequence[str] | None) -> list[str]:
    """The spec's leaking columns among a fitted vectorizer's feature names."""
    names = {str(f).split("=")[0] for f in features or ()}
    return [c for c in spec.leaky if c in names]


def leak_advice(spec: Spec, columns: Sequence[str]) -> str:
    both = " and ".join(f"`{c}`" for c in columns)
    return (
        f"your model was fitted with {both}, which leak the target: they describe what the "
        f"client spent with the card, known only once the {spec.target} was granted, so a "
        "model using them looks perfect in training and is useless for a new applicant "
        f"(the grader sends applicants without them). Drop {both} before fitting"
    )
