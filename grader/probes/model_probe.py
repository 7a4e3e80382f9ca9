"""Sandboxed, in the model child of probe.py: load the submission's pickles and score records.

`probe({"records": [...], "files": {"model": "model.bin", "pipeline": "pipeline.bin"}})` returns,
per file, what it loaded to and the probabilities it gives (or the error). Standard library
only at its core; imports nothing from the grader package.

The child holds the seeded records, so a pickle may not run code of its own choosing here: it
is read by `ModelUnpickler`, which hands out only scikit-learn estimator classes, NumPy's
arrays, dtypes and scalars, SciPy's sparse matrices and a few inert builtins (`SAFE`); any
other global (a function, a class of the submission, `os.system`, `eval`, ...) stops the load
with an `UnpicklingError` that names it.
"""

from __future__ import annotations

import importlib
import os
import pickle
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


# Globals a course model's pickle needs that are not classes of the kinds `allowed` accepts.
SAFE = frozenset(
    {
        ("numpy._core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "scalar"), ("numpy.core.multiarray", "scalar"),
        ("numpy._core.numeric", "_frombuffer"), ("numpy.core.numeric", "_frombuffer"),
        ("numpy.random._pickle", "__randomstate_ctor"),
        ("numpy.random._pickle", "__bit_generator_ctor"),
        ("numpy.random._pickle", "__generator_ctor"),
        ("copyreg", "_reconstructor"), ("collections", "OrderedDict"), ("_codecs", "encode"),
        *(("builtins", name) for name in ("object", "set", "frozenset", "slice", "complex",
          "bytearray", "bytes", "str", "int", "float", "bool", "tuple", "list", "dict", "range")),
    }
)  # fmt: skip


def allowed(module: str, name: str) -> Any:
    """The object a pickle may name, or None: scikit-learn estimator classes, NumPy's array,
    dtype and scalar types (and random states), SciPy's sparse matrices, and `SAFE`."""
    top = module.split(".", 1)[0]
    if top not in ("numpy", "scipy", "sklearn") and (module, name) not in SAFE:
        return None
    obj = getattr(importlib.import_module(module), name, None)
    if (module, name) in SAFE:
        return obj
    if not isinstance(obj, type) or "." in name:
        return None
    if top == "sklearn":
        from sklearn.base import BaseEstimator

        return obj if issubclass(obj, BaseEstimator) else None
    if top == "numpy":
        import numpy

        kinds = (
            numpy.generic,
            numpy.dtype,
            numpy.ndarray,
            numpy.random.RandomState,
            numpy.random.BitGenerator,
            numpy.random.Generator,
        )
        return obj if issubclass(obj, kinds) else None
    from scipy import sparse

    return (
        obj
        if module.startswith("scipy.sparse") and issubclass(obj, sparse.spmatrix | sparse.sparray)
        else None
    )


class ModelUnpickler(pickle.Unpickler):
    """pickle's reader that hands out only the globals `allowed` accepts."""

    def find_class(self, module: str, name: str) -> Any:
        found = allowed(module, name)
        if found is None:
            raise pickle.UnpicklingError(
                f"the pickle refers to {module}.{name}, which the grader does not load: a model "
                "for this course is made of scikit-learn estimators and NumPy arrays only"
            )
        return found


def load(path: str) -> tuple[Any, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with open(path, "rb") as f:
            obj = ModelUnpickler(f).load()
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
    records = request["records"]
    result: dict[str, Any] = {}
    files = request["files"]
    if "model" in files:
        result["model"] = probe_model(files["model"], records)
    if "pipeline" in files:
        result["pipeline"] = probe_pipeline(files["pipeline"], records)
    return result
