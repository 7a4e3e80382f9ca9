"""Helpers the stage contracts share: AUC, the model probe's parts, HTTP answer checks."""

from __future__ import annotations

import math
import re
from typing import Any, NoReturn

from grader.checks import expect, fail
from grader.grading.requests import HELDOUT, HttpRun
from grader.grading.session import Grading
from grader.probes import http_probe
from grader.submission import lockfile

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


def caused(grading: Grading, cause: str, message: str) -> NoReturn:
    """Fail because of `cause`: with `message` at the first check of the run that meets it,
    with "not checked because N.M failed" at every later one (grading/causes.py)."""
    fail(grading.causes.message(cause, message))


def trained(grading: Grading) -> None:
    """Fail unless there are models to grade: the ones train.py wrote, or, when it failed
    (charged in 1.1), the ones submitted with it."""
    run = grading.train
    if not (run.ok or grading.submitted_models):
        caused(
            grading,
            "train",
            f"train.py did not complete and no model.bin or pipeline.bin was submitted, so "
            f"this cannot be checked.\n{run.describe()}",
        )


def probe_part(grading: Grading, part: str, file: str) -> dict[str, Any]:
    """The model probe's result for model.bin or pipeline.bin; fail with the reason if none
    (said in full once: at the first check that needs the file)."""
    trained(grading)
    probe = grading.model_probe
    if "error" in probe:
        caused(grading, "probe", f"loading {file} crashed the grader's probe:\n{probe['error']}")
    result: dict[str, Any] = probe.get(part, {})
    if not result.get("exists"):
        caused(grading, part, f"train.py ran but wrote no {file}: save it with pickle.dump")
    if "error" in result and "type" not in result:  # the probe sets the type once loaded
        caused(grading, part, f"{file} could not be loaded: {result['error']}")
    if "error" in result:
        caused(grading, part, f"{file} loaded but could not score records: {result['error']}")
    return result


def _pipeline_only(probe: dict[str, Any]) -> bool:
    """Did the model probe find pipeline.bin and no model.bin?"""
    model, pipeline = probe.get("model"), probe.get("pipeline")
    return (
        isinstance(model, dict)
        and not model.get("exists")
        and isinstance(pipeline, dict)
        and bool(pipeline.get("exists"))
    )


def stage1_model(grading: Grading) -> tuple[str, str]:
    """(probe part, file) that stage 1 grades: model.bin, as the assignment asks; in a folder
    whose train.py writes pipeline.bin and no model.bin (the lessons from step 02 on),
    pipeline.bin, the same two fitted steps as one object."""
    trained(grading)
    if _pipeline_only(grading.model_probe):
        return "pipeline", "pipeline.bin"
    return "model", "model.bin"


def stage1_note(grading: Grading) -> str | None:
    """The report's note when stage 1 graded pipeline.bin (else None). It asks nothing of the
    probe: a run whose model probe never ran gets no note."""
    probed = 1 in grading.stages and "model_probe" in vars(grading)
    if probed and _pipeline_only(grading.model_probe):
        return "Stage 1 graded pipeline.bin: train.py wrote no model.bin."
    return None


def usable(grading: Grading, part: str) -> bool:
    """Does the probe have probabilities of `part` ("model" or "pipeline")? (Asks without
    failing, so without charging anything.)"""
    if not (grading.train.ok or grading.submitted_models):
        return False
    result = grading.model_probe.get(part)
    return (
        isinstance(result, dict)
        and bool(result.get("exists"))
        and "error" not in result
        and isinstance(result.get("probabilities"), list)
        and len(result["probabilities"]) == len(grading.records.all_records)
    )


def probabilities(grading: Grading, part: str, file: str) -> list[float]:
    result = probe_part(grading, part, file)
    values = result.get("probabilities")
    expect(
        isinstance(values, list) and len(values) == len(grading.records.all_records),
        f"{file} gave no probabilities for the grader's records",
    )
    return [float(v) for v in values]  # type: ignore[union-attr]


def heldout_slice(grading: Grading, values: list[float]) -> list[float]:
    n = len(grading.records.heldout)
    return values[1 : 1 + n]


def seeded_slice(grading: Grading, values: list[float]) -> list[float]:
    n = len(grading.records.heldout)
    return values[1 + n :]


def server(grading: Grading) -> HttpRun:
    """The HTTP probe's run; fail with the server's last output lines if it never listened
    (in full once, at the first check that needs the server: 3.1)."""
    trained(grading)
    run = grading.http
    if not run.started:
        log = "\n".join(run.server_log.strip().splitlines()[-12:])
        why = (
            f"exited with code {run.exit_code}"
            if run.exit_code is not None
            else f"did not listen on port {grading.spec.port} within {run.start_seconds:.0f} s"
        )
        shown = f"\n--- last server output ---\n{log}" if log else ""
        caused(
            grading,
            "server",
            f"`uvicorn predict:app --port {grading.spec.port}` {why}: predict.py must define "
            f"`app` and load its model at import without errors.{shown}",
        )
    return run


def answer_text(answer: dict[str, Any]) -> str:
    if "error" in answer:
        return str(answer["error"])
    body = answer.get("json", answer.get("text", ""))
    size = f" ({http_probe.size_text(answer['bytes'])})" if "bytes" in answer else ""
    return f"HTTP {answer.get('status')}{size}: {str(body)[:300]}"


def log_tail(run: HttpRun | None, lines: int = 15) -> str:
    """What the server logged about an error, to show under a 500: its last traceback (the
    cause), else its last lines."""
    if run is None or not run.server_log.strip():
        return ""
    logged = run.server_log.strip().splitlines()
    while logged and logged[-1].startswith("INFO:"):  # the shutdown after the requests
        logged.pop()
    starts = [i for i, line in enumerate(logged) if line.startswith("ERROR:")]
    starts = starts or [i for i, line in enumerate(logged) if line.startswith("Traceback")]
    shown = logged[starts[-1] :] if starts else logged[-lines:]
    if not shown:
        return ""
    if len(shown) > 2 * lines:  # the first line says what failed, the last ones why
        shown = [shown[0], "...", *shown[-2 * lines :]]
    text = "\n".join(shown)
    return f"\n--- last server output ---\n{text}"


# What FastAPI says when a response holds a NumPy value it cannot write as JSON.
NUMPY_VALUE = re.compile(
    r"numpy\.(?:bool_?|float\d*|int\d*)\W.*(?:not iterable|vars\(\) argument|not JSON serializable"
    r"|Unable to serialize)|(?:not iterable|not JSON serializable|Unable to serialize).*numpy",
    re.S,
)


def hint(run: HttpRun | None) -> str:
    """The fix of a server error the grader recognises in the server's log ("" if none)."""
    if run is None:
        return ""
    tail = run.server_log[-4000:]
    if NUMPY_VALUE.search(tail):
        return (
            " /predict returns a NumPy value (numpy.bool or numpy.float64: what "
            "predict_proba and a comparison with it give), which FastAPI cannot write as JSON: "
            "convert with float() and bool(), e.g. "
            "{'card_probability': float(p), 'card': bool(p >= 0.5)}."
        )
    return ""


def read_prediction(
    body: dict[str, Any], prob_name: str, label_name: str
) -> tuple[Any, Any, str | None]:
    """(probability, label, note): under the spec's names, else under whatever keys hold a
    number in [0, 1] and a bool (the note says which), so that a renamed field is charged
    once, at the check that names the fields, and the values are still graded elsewhere."""
    if prob_name in body and label_name in body:
        return body[prob_name], body[label_name], None
    numbers = [
        k
        for k, v in body.items()
        if isinstance(v, int | float)
        and not isinstance(v, bool)
        and math.isfinite(v)
        and 0 <= v <= 1
    ]
    bools = [k for k, v in body.items() if isinstance(v, bool)]
    prob_key = prob_name if prob_name in body else (numbers[0] if len(numbers) == 1 else None)
    label_key = label_name if label_name in body else (bools[0] if len(bools) == 1 else None)
    if prob_key is None or label_key is None:
        return None, None, None
    note = f"read from {prob_key!r} and {label_key!r}; the field names are graded in 3.3"
    return body[prob_key], body[label_key], note


def check_prediction(
    grading: Grading,
    answer: dict[str, Any],
    expected: float | None,
    what: str,
    run: HttpRun | None = None,
    names: bool = True,
) -> str | None:
    """None if the answer is a valid prediction (matching `expected`), else what is wrong.

    `names=False`: a check that does not grade the field names reads the values under
    whatever keys hold them. `run`: the server whose log tail is shown under a 5xx; an error
    status of that server is said in full once (then "not checked because N.M failed").
    One function on purpose: the order of these questions is the order a student fixes them."""
    spec = grading.spec
    prob_name, label_name = spec.response_probability, spec.response_label
    status = answer.get("status")
    if status != 200:
        error = isinstance(status, int) and status >= 500
        log = f"{hint(run)}{log_tail(run)}" if error else ""
        message = f"{what}: expected HTTP 200, got {answer_text(answer)}{log}"
        if run is None:
            return message
        return grading.causes.message(f"status:{id(run)}", message)
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
    if missing and names:
        return (
            f"{what}: the response lacks {', '.join(map(repr, missing))}; it has "
            f"{sorted(body)}. Return {{{prob_name!r}: float, {label_name!r}: bool}}"
        )
    prob, label, _ = read_prediction(body, prob_name, label_name)
    if prob is None:
        return (
            f"{what}: no probability and true/false decision found in {sorted(body)}; "
            f"return {{{prob_name!r}: float, {label_name!r}: bool}}"
        )
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


def served_probabilities(grading: Grading, run: HttpRun, prefix: str = HELDOUT) -> list[float]:
    """The probabilities the service gave the requests whose id starts with `prefix`."""
    spec = grading.spec
    values = []
    for rid, answer in run.responses.items():
        body = answer.get("json")
        if rid.startswith(prefix) and answer.get("status") == 200 and isinstance(body, dict):
            prob, _, _ = read_prediction(body, spec.response_probability, spec.response_label)
            if isinstance(prob, int | float) and not isinstance(prob, bool):
                values.append(float(prob))
    return values


def ignores_input(grading: Grading, run: HttpRun, where: str) -> str | None:
    """What is wrong if the service gives every client the same answer (a hard-coded
    response, or a model that never sees the request), else None."""
    values = served_probabilities(grading, run)
    if len(values) >= 5 and max(values) - min(values) < 1e-9:
        return (
            f"{where} answers {values[0]:g} for every one of {len(values)} different "
            f"{'clients' if grading.spec.name == 'credit' else 'customers'}: the answer does "
            "not depend on the request. Score each request with the pipeline "
            "(pipeline.predict_proba([request.model_dump()])), never a fixed value"
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


def pinned_version(grading: Grading, package: str) -> str | None:
    """The version uv.lock locks, else (no uv.lock: charged in 5.1) an exact `==` pin of
    pyproject.toml."""
    if grading.submitted_file("uv.lock") is not None:
        return grading.locked_version(package)
    return lockfile.pinned_version(grading.submitted_toml("pyproject.toml"), package)
