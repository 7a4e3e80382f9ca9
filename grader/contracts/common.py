"""Helpers the stage contracts share: AUC, the model probe's parts, HTTP answer checks."""

from __future__ import annotations

import math
from typing import Any

from grader.checks import expect, fail
from grader.probes import http_probe
from grader.session import Grading, HttpRun

TOLERANCE = 1e-6


def auc(targets: list[int], scores: list[float]) -> float:
    """ROC AUC by ranks (Mann-Whitney U), ties averaged; as sklearn's roc_auc_score."""
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    ranks = [0.0] * len(scores)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    pos = sum(targets)
    neg = len(targets) - pos
    rank_sum = sum(r for r, t in zip(ranks, targets, strict=True) if t == 1)
    return (rank_sum - pos * (pos + 1) / 2) / (pos * neg)


def trained(grading: Grading) -> None:
    """Fail unless train.py ran: later checks depend on the models it writes."""
    run = grading.train
    expect(run.ok, f"train.py did not complete (see check 1.1), so this cannot be checked.\n"
                   f"{run.describe()}")  # fmt: skip


def probe_part(grading: Grading, part: str, file: str) -> dict[str, Any]:
    """The model probe's result for model.bin or pipeline.bin; fail with the reason if none."""
    trained(grading)
    probe = grading.model_probe
    if "error" in probe:
        fail(f"loading {file} crashed the grader's probe:\n{probe['error']}")
    result: dict[str, Any] = probe.get(part, {})
    expect(result.get("exists"), f"train.py ran but wrote no {file}: save it with pickle.dump")
    if "error" in result:
        fail(f"{file} loaded but could not score records: {result['error']}")
    return result


def probabilities(grading: Grading, part: str, file: str) -> list[float]:
    result = probe_part(grading, part, file)
    values = result.get("probabilities")
    expect(isinstance(values, list) and len(values) == len(grading.probes.all_records),
           f"{file} gave no probabilities for the grader's records")  # fmt: skip
    return [float(v) for v in values]  # type: ignore[union-attr]


def heldout_slice(grading: Grading, values: list[float]) -> list[float]:
    n = len(grading.probes.heldout)
    return values[1 : 1 + n]


def seeded_slice(grading: Grading, values: list[float]) -> list[float]:
    n = len(grading.probes.heldout)
    return values[1 + n :]


def server(grading: Grading) -> HttpRun:
    """The HTTP probe's run; fail with the server's last output lines if it never listened."""
    trained(grading)
    run = grading.http
    if not run.started:
        log = "\n".join(run.server_log.strip().splitlines()[-12:])
        why = (
            f"exited with code {run.exit_code}"
            if run.exit_code is not None
            else f"did not listen on port {grading.spec.port} within {run.start_seconds:.0f} s"
        )
        fail(
            f"`uvicorn predict:app --port {grading.spec.port}` {why}: predict.py must define "
            f"`app` and load its model at import without errors.\n--- last server output ---\n"
            f"{log}"
        )
    return run


def answer_text(answer: dict[str, Any]) -> str:
    if "error" in answer:
        return str(answer["error"])
    body = answer.get("json", answer.get("text", ""))
    size = f" ({http_probe.size_text(answer['bytes'])})" if "bytes" in answer else ""
    return f"HTTP {answer.get('status')}{size}: {str(body)[:300]}"


def check_prediction(
    grading: Grading, answer: dict[str, Any], expected: float | None, what: str
) -> str | None:
    """None if the answer is a valid prediction (matching `expected`), else what is wrong."""
    spec = grading.spec
    prob_name, label_name = spec.response_probability, spec.response_label
    if answer.get("status") != 200:
        return f"{what}: expected HTTP 200, got {answer_text(answer)}"
    if answer.get("truncated"):
        return (
            f"{what}: the response is {http_probe.size_text(answer['bytes'])}; "
            f"{spec.predict_path} should return {{{prob_name!r}: float, {label_name!r}: bool}}, "
            "a few dozen bytes"
        )
    body = answer.get("json")
    if not isinstance(body, dict):
        return f"{what}: the response is not a JSON object: {answer_text(answer)}"
    missing = [n for n in (prob_name, label_name) if n not in body]
    if missing:
        return (
            f"{what}: the response lacks {', '.join(map(repr, missing))}; it has "
            f"{sorted(body)}. Return {{{prob_name!r}: float, {label_name!r}: bool}}"
        )
    prob, label = body[prob_name], body[label_name]
    if isinstance(prob, bool) or not isinstance(prob, (int, float)) or not math.isfinite(prob):
        return f"{what}: {prob_name!r} must be a number, got {prob!r}"
    if not isinstance(label, bool):
        return f"{what}: {label_name!r} must be true/false, got {label!r}"
    if not 0.0 <= prob <= 1.0:
        return f"{what}: {prob_name!r} must be a probability in [0, 1], got {prob}"
    if label != (prob >= spec.threshold):
        return (
            f"{what}: {label_name!r} is {label} but {prob_name!r} is {prob}: "
            f"it must be {prob_name} >= {spec.threshold}"
        )
    if expected is not None and abs(prob - expected) > TOLERANCE:
        return (
            f"{what}: {prob_name!r} is {prob:.6f} but pipeline.bin gives {expected:.6f} for the "
            "same record: serve the pipeline train.py wrote, and pass the record to it unchanged"
        )
    return None


def mentions(body: Any, field: str) -> bool:
    """Does a 422 body name the field (FastAPI: detail[].loc)?"""
    if isinstance(body, dict):
        details = body.get("detail")
        if isinstance(details, list):
            for d in details:
                if isinstance(d, dict) and field in [str(x) for x in d.get("loc", [])]:
                    return True
    return field in str(body)
