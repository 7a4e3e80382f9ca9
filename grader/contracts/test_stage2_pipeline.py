"""Stage 2 (pipeline): pipeline.bin is one fitted Pipeline (DictVectorizer → LogisticRegression)
that gives the same probabilities as model.bin on the same records (as the model stage 1 graded:
in a folder without model.bin, pipeline.bin itself)."""

from __future__ import annotations

from grader.checks import check, expect
from grader.contracts.common import (
    TOLERANCE,
    auc,
    heldout_slice,
    probabilities,
    probe_part,
    seeded_slice,
    stage1_model,
    usable,
)
from grader.grading.session import Grading


@check("2.1", "pipeline.bin is a fitted Pipeline (DictVectorizer → LogisticRegression)", points=2)
def test_pipeline_type(grading: Grading) -> None:
    result = probe_part(grading, "pipeline", "pipeline.bin")
    steps = result.get("steps")
    expect(
        steps,
        f"pipeline.bin loads to {result.get('type')}, not a scikit-learn Pipeline: "
        "save make_pipeline(DictVectorizer(), LogisticRegression()) after fit",
    )
    names = [s.rsplit(".", 1)[-1] for s in steps]  # type: ignore[union-attr]
    expect(
        names[0] == "DictVectorizer" and names[-1] == "LogisticRegression",
        f"the pipeline's steps are {names}: it must start with DictVectorizer and end with "
        "LogisticRegression",
    )


def _compare(grading: Grading, part: slice | None, what: str) -> None:
    stage1, file = stage1_model(grading)
    model = probabilities(grading, stage1, file)
    pipeline = probabilities(grading, "pipeline", "pipeline.bin")
    pairs = list(zip(model, pipeline, strict=True))
    if part is None:
        pairs = list(
            zip(heldout_slice(grading, model), heldout_slice(grading, pipeline), strict=True)
        )
    else:
        pairs = list(
            zip(seeded_slice(grading, model), seeded_slice(grading, pipeline), strict=True)
        )
    worst = max(abs(a - b) for a, b in pairs)
    expect(
        worst <= TOLERANCE,
        f"pipeline.bin and {file} disagree on {what} (largest difference {worst:.4g}): "
        "train both on the same data with the same parameters",
    )


@check("2.2", "pipeline agrees with the stage-1 model on the held-out set", points=2)
def test_pipeline_agrees(grading: Grading) -> None:
    _compare(grading, None, "the held-out set")


@check("2.3", "pipeline reaches the AUC floor", points=1)
def test_pipeline_auc(grading: Grading) -> None:
    pipeline = probabilities(grading, "pipeline", "pipeline.bin")
    stage1, file = stage1_model(grading)
    if usable(grading, stage1):  # the same model as stage 1's: graded in 1.4
        model = probabilities(grading, stage1, file)
        if max(abs(a - b) for a, b in zip(model, pipeline, strict=True)) <= TOLERANCE:
            return
    score = auc(grading.records.heldout_targets, heldout_slice(grading, pipeline))
    expect(
        score >= grading.spec.auc_floor,
        f"pipeline AUC on the held-out 20% is {score:.3f}, below {grading.spec.auc_floor}",
    )


@check("2.4", "pipeline agrees with the stage-1 model on seeded records", points=1, hidden=True)
def test_pipeline_agrees_seeded(grading: Grading) -> None:
    _compare(grading, slice(0), "the seeded records")
