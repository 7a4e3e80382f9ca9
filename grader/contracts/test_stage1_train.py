"""Stage 1 (train): train.py runs in time and writes model.bin = (vectorizer, model) whose
probabilities on the grader's held-out set reach the spec's AUC floor."""

from __future__ import annotations

import math

from grader.checks import check, expect
from grader.contracts.common import auc, heldout_slice, probabilities, probe_part, seeded_slice
from grader.session import Grading


@check("1.1", "train.py runs", points=2)
def test_train_runs(grading: Grading) -> None:
    expect((grading.submission / "train.py").is_file(), "there is no train.py in the folder")
    run = grading.train
    var = grading.spec.env_var
    expect(
        run.ok,
        f"{run.describe()}. train.py must run without network access, reading the data from "
        f"${var} and finishing within {grading.spec.train_seconds:.0f} s.\n"
        f"--- last output ---\n{run.tail()}",
    )


@check("1.2", "train.py writes model.bin", points=1)
def test_writes_model(grading: Grading) -> None:
    probe_part(grading, "model", "model.bin")


@check("1.3", "model.bin loads to (vectorizer, model)", points=2)
def test_model_loads(grading: Grading) -> None:
    result = probe_part(grading, "model", "model.bin")
    expect("parts" in result, f"model.bin loads to {result.get('type')}: "
                              "pickle the tuple (dv, model)")  # fmt: skip


@check("1.4", "model reaches the AUC floor on held-out data", points=3)
def test_model_auc(grading: Grading) -> None:
    values = heldout_slice(grading, probabilities(grading, "model", "model.bin"))
    score = auc(grading.probes.heldout_targets, values)
    floor = grading.spec.auc_floor
    expect(
        score >= floor,
        f"AUC on the held-out 20% is {score:.3f}, below {floor}: check the features, the "
        "preprocessing (lower case, '_' for spaces) and that the model is fitted on the "
        "training part",
    )


@check("1.5", "model scores seeded records with valid probabilities", points=1, hidden=True)
def test_model_seeded(grading: Grading) -> None:
    values = seeded_slice(grading, probabilities(grading, "model", "model.bin"))
    bad = [v for v in values if not (math.isfinite(v) and 0 <= v <= 1)]
    expect(not bad, f"model.bin gives invalid probabilities for valid records: {bad[:3]}")
