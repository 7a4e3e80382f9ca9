"""Export the fitted pipeline's weights to JSON for the fast path (this step imports scikit-learn).

Run (in a folder with pipeline.bin):  python -m bench.fastpath.export pipeline.bin weights.json
"""

from __future__ import annotations

import json
import pickle
import sys
from pathlib import Path

from sklearn.feature_extraction import DictVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline


def export(pipeline: Pipeline) -> dict[str, object]:
    dv, model = (step for _, step in pipeline.steps)
    if not isinstance(dv, DictVectorizer) or not isinstance(model, LogisticRegression):
        raise TypeError("expected a DictVectorizer → LogisticRegression pipeline")
    if list(model.classes_) != [0, 1] or model.coef_.shape[0] != 1:
        raise ValueError(f"expected a binary model with classes [0, 1], got {model.classes_}")
    return {
        "separator": dv.separator,
        "intercept": float(model.intercept_[0]),
        "weights": dict(zip(dv.feature_names_, map(float, model.coef_[0]), strict=True)),
    }


def main(source: str = "pipeline.bin", target: str = "weights.json") -> None:
    with open(source, "rb") as f_in:
        pipeline = pickle.load(f_in)
    Path(target).write_text(json.dumps(export(pipeline), indent=1))
    print(f"{source} → {target}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
