"""Sandboxed, in the model child of probe.py: load the submission's pickles and score records.

`probe({"records": [...], "files": {"model": "model.bin", "pipeline": "pipeline.bin"}})` returns,
per file, what it loaded to and the probabilities it gives (or the error). Standard library
only at its core; imports nothing from the grader package.
"""

from __future__ import annotations

import os
import pickle
import sys
import traceback
import warnings
from typing import Any


def describe(obj: Any) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def feature_names(vectorizer: Any) -> list[str] | None:
    """A fitted DictVectorizer's feature names (to tell which columns the model saw)."""
    names = getattr(vectorizer, "feature_names_", None)
    if isinstance(names, list) and all(isinstance(n, str) for n in names):
        return list(names)
    return None


def probabilities(predict_proba: Any, X: Any) -> list[float]:
    proba = predict_proba(X)
    return [float(p) for p in proba[:, 1]]


def load(path: str) -> tuple[Any, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with open(path, "rb") as f:
            obj = pickle.load(f)
    return obj, [f"{w.category.__name__}: {w.message}" for w in caught]


def probe_model(path: str, records: list[dict[str, Any]]) -> dict[str, Any]:
    """model.bin: a (vectorizer, model) tuple, or a fitted Pipeline (the course workshop's
    form); either is scored on the records."""
    out: dict[str, Any] = {"exists": os.path.isfile(path)}
    if not out["exists"]:
        return out
    try:
        obj, out["warnings"] = load(path)
        out["type"] = describe(obj)
        steps = getattr(obj, "steps", None)
        if isinstance(steps, list) and hasattr(obj, "predict_proba"):
            out["steps"] = [describe(step) for _, step in steps]
            out["features"] = feature_names(steps[0][1]) if steps else None
            out["probabilities"] = probabilities(obj.predict_proba, records)
            return out
        if not isinstance(obj, tuple) or len(obj) != 2:
            out["error"] = (
                f"loads to {describe(obj)}, neither a (vectorizer, model) tuple nor a Pipeline"
            )
            return out
        dv, model = obj
        out["parts"] = [describe(dv), describe(model)]
        out["features"] = feature_names(dv)
        out["probabilities"] = probabilities(model.predict_proba, dv.transform(records))
    except Exception as e:
        out["error"] = f"{type(e).__name__}: {e}"
        out["traceback"] = traceback.format_exc(limit=-3)
    return out


def probe_pipeline(path: str, records: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"exists": os.path.isfile(path)}
    if not out["exists"]:
        return out
    try:
        obj, out["warnings"] = load(path)
        out["type"] = describe(obj)
        steps = getattr(obj, "steps", None)
        if isinstance(steps, list):
            out["steps"] = [describe(step) for _, step in steps]
            out["features"] = feature_names(steps[0][1]) if steps else None
        out["probabilities"] = probabilities(obj.predict_proba, records)
    except Exception as e:
        out["error"] = f"{type(e).__name__}: {e}"
        out["traceback"] = traceback.format_exc(limit=-3)
    return out


def probe(request: dict[str, Any]) -> dict[str, Any]:
    """Load each requested file and score the records with it."""
    sys.path.insert(0, os.getcwd())  # pickles may name modules of the submission
    records = request["records"]
    result: dict[str, Any] = {}
    files = request["files"]
    if "model" in files:
        result["model"] = probe_model(files["model"], records)
    if "pipeline" in files:
        result["pipeline"] = probe_pipeline(files["pipeline"], records)
    return result
