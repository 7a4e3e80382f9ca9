"""A DictVectorizer → LogisticRegression pipeline as a table of weights, scored in pure Python."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path


class WeightsModel:
    """The probability of the positive class, as the pipeline's predict_proba(...)[:, 1].

    DictVectorizer turns a string value v of feature f into the column "f=v" (1.0) and a number
    into the column "f" (the number); an unseen "f=v" has no column. So the logistic regression's
    score is the intercept plus, per feature, the weight of "f=v" or weight("f") × number.
    """

    def __init__(
        self, intercept: float, weights: Mapping[str, float], separator: str = "="
    ) -> None:
        self.intercept = intercept
        self.weights = dict(weights)
        self.separator = separator

    @classmethod
    def load(cls, path: str | Path) -> WeightsModel:
        data = json.loads(Path(path).read_text())
        return cls(data["intercept"], data["weights"], data["separator"])

    def predict_one(self, record: Mapping[str, object]) -> float:
        z = self.intercept
        weights, sep = self.weights, self.separator
        for feature, value in record.items():
            if isinstance(value, str):
                z += weights.get(f"{feature}{sep}{value}", 0.0)
            elif isinstance(value, int | float):
                z += weights.get(feature, 0.0) * value
            else:
                raise TypeError(f"{feature}: {type(value).__name__} is neither str nor a number")
        return sigmoid(z)


def sigmoid(z: float) -> float:
    """1 / (1 + e^-z), without overflow for large |z| (as scipy.special.expit)."""
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)
