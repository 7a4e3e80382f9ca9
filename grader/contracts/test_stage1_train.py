"""Stage 1 (train): train.py runs in time and writes model.bin = (vectorizer, model), or the
same two steps as a fitted Pipeline, whose probabilities on the grader's held-out set reach the
spec's AUC floor, fitted without leaking columns and without the held-out rows. A folder whose
train.py writes only pipeline.bin (the lessons from step 02 on) is graded from pipeline.bin."""

from __future__ import annotations

import math

from grader import diagnose
from grader.checks import check, expect, fail
from grader.contracts.common import (
    auc,
    heldout_slice,
    probabilities,
    probe_part,
    seeded_slice,
    stage1_model,
)
from grader.grading.session import Grading


@check("1.1", "train.py runs", points=2)
def test_train_runs(grading: Grading) -> None:
    if not (grading.submission / "train.py").is_file():
        grading.causes.charge("train")  # the checks that need its models say so in one line
        fail("there is no train.py in the folder")
    run = grading.train
    var = grading.spec.env_var
    kept = (
        "The model.bin / pipeline.bin you submitted are graded in the other checks.\n"
        if grading.submitted_models
        else ""
    )
    if not run.ok:
        grading.causes.charge("train")
    expect(
        run.ok,
        f"{run.describe()}. train.py must run without network access, reading the data from "
        f"${var} and finishing within {grading.spec.train_seconds:.0f} s.\n{kept}"
        f"--- last output ---\n{run.tail()}",
    )


@check("1.2", "train.py writes model.bin (or only pipeline.bin)", points=1)
def test_writes_model(grading: Grading) -> None:
    probe_part(grading, *stage1_model(grading))


@check("1.3", "the model loads to (vectorizer, model) or a Pipeline", points=2)
def test_model_loads(grading: Grading) -> None:
    part, file = stage1_model(grading)
    result = probe_part(grading, part, file)
    expect(
        "parts" in result or "steps" in result,
        f"{file} loads to {result.get('type')}: pickle the tuple (dv, model), "
        "or the fitted Pipeline",
    )


def training_problem(grading: Grading, result: dict[str, object], values: list[float]) -> str:
    """What is wrong with how the model was fitted, in the assignment's terms ("" if nothing
    the grader can tell)."""
    spec = grading.spec
    features = result.get("features")
    leaks = diagnose.leaking(spec, features if isinstance(features, list) else None)
    if leaks:
        return diagnose.leak_advice(spec, leaks)
    if diagnose.trained_on_all_rows(spec, grading.dataset, values):
        return (
            "your model was fitted on all rows, the test rows included: it has seen the "
            "held-out 20% the grader evaluates on, so its test AUC overstates how it does on "
            f"new {'applicants' if spec.name == 'credit' else 'customers'}. Fit on the training "
            f"part of train_test_split(test_size={spec.test_size}, "
            f"random_state={spec.random_state}) only"
        )
    return ""


@check("1.4", "model reaches the AUC floor on held-out data", points=13)
def test_model_auc(grading: Grading) -> None:
    part, file = stage1_model(grading)
    result = probe_part(grading, part, file)
    values = heldout_slice(grading, probabilities(grading, part, file))
    problem = training_problem(grading, result, values)
    expect(not problem, problem)
    score = auc(grading.records.heldout_targets, values)
    floor = grading.spec.auc_floor
    features = ", ".join(grading.spec.features)
    expect(
        score >= floor,
        f"AUC of {file} on the held-out 20% is {score:.3f}, below {floor}: check that the "
        f"model uses the features {features}, preprocessed as the assignment says, and is "
        "fitted on the training part",
    )


@check("1.5", "model scores seeded records with valid probabilities", points=1, hidden=True)
def test_model_seeded(grading: Grading) -> None:
    part, file = stage1_model(grading)
    values = seeded_slice(grading, probabilities(grading, part, file))
    bad = [v for v in values if not (math.isfinite(v) and 0 <= v <= 1)]
    expect(not bad, f"{file} gives invalid probabilities for valid records: {bad[:3]}")
