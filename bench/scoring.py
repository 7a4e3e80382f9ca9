"""The model alone, in this process: what one prediction and a batch of 1,000 cost with the
pickled pipeline (scikit-learn) and with pipeline.onnx (ONNX Runtime), without any web layer.

Used by bench/run.py, on the models that 08's and 09's train.py wrote. The ONNX input is built
as DictVectorizer sees a record: a number under its name, a text value as "field=value": 1.0.
"""

from __future__ import annotations

import pickle
import time
from collections.abc import Callable
from pathlib import Path

from bench.harness import CUSTOMER

BATCH = 1000


def one_map(record: dict[str, object]) -> dict[str, float]:
    result = {}
    for field, value in record.items():
        if isinstance(value, str):
            result[f"{field}={value}"] = 1.0
        else:
            result[field] = float(value)  # type: ignore[arg-type]
    return result


def best_of(fn: Callable[[], object], repeat: int, number: int) -> float:
    """The fastest of `repeat` timings of `number` calls, in µs per call (timeit's advice)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - start) / number)
    return best * 1e6


def measure(pickled: Path, onnx: Path, quick: bool) -> dict[str, float]:
    """µs per call: {"pickle, 1": …, "pickle, 1000": …, "ONNX, 1": …, "ONNX, 1000": …}."""
    import onnxruntime as ort

    with pickled.open("rb") as f:
        pipeline = pickle.load(f)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(onnx), options, providers=["CPUExecutionProvider"])
    batch = [CUSTOMER] * BATCH

    def onnx_one(record: dict[str, object] = CUSTOMER) -> float:
        return float(session.run(["probabilities"], {"customer": one_map(record)})[0][0, 1])

    repeat, number = (1, 3) if quick else (5, 20)
    return {
        "pickle, 1": best_of(lambda: pipeline.predict_proba([CUSTOMER]), repeat, number * 20),
        "pickle, 1000": best_of(lambda: pipeline.predict_proba(batch), repeat, number),
        "ONNX, 1": best_of(onnx_one, repeat, number * 20),
        "ONNX, 1000": best_of(lambda: [onnx_one(r) for r in batch], repeat, number),
    }


def table(costs: dict[str, float]) -> str:
    lines = [
        "| model alone, in-process | one customer, µs | 1,000 customers, ms | µs per customer |",
        "|---|---:|---:|---:|",
    ]
    for kind in ("pickle", "ONNX"):
        one, many = costs[f"{kind}, 1"], costs[f"{kind}, {BATCH}"]
        label = "pipeline.bin, predict_proba" if kind == "pickle" else "pipeline.onnx, session.run"
        lines.append(f"| {label} | {one:.0f} | {many / 1000:.1f} | {many / BATCH:.1f} |")
    return "\n".join(lines)
