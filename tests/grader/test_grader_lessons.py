"""Each lesson folder, graded with the churn spec at its own stage, gets full marks; the same
seed gives the same results."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.grader_helpers import failed, grade, max_score, status
from tests.support import ROOT, STEPS, copy_step

STAGES = {step: n for n, step in enumerate(STEPS, start=1)}
NO_ENGINE = [s for s in STEPS if STAGES[s] <= 5]


def full_marks(results: dict[str, Any], stage: int) -> None:
    assert not failed(results), failed(results)
    assert results["score"] == max_score(results) > 0
    stages = {t["extra_data"]["stage"] for t in results["tests"] if status(t) == "passed"}
    assert stages == set(range(1, stage + 1))


@pytest.mark.slow
@pytest.mark.parametrize("step", [s for s in NO_ENGINE if (ROOT / s).is_dir()])
def test_lesson_gets_full_marks(step: str, tmp_path: Path) -> None:
    stage = STAGES[step]
    code, results, out = grade(copy_step(step, tmp_path), "--stage", str(stage),
                               "--engine", "none")  # fmt: skip
    assert code == 0, out
    full_marks(results, stage)
    assert f"Total: {results['score']:g}/{max_score(results):g}" in out


@pytest.mark.slow
@pytest.mark.container
@pytest.mark.parametrize("step", [s for s in STEPS if STAGES[s] >= 6 and (ROOT / s).is_dir()])
def test_container_lesson_gets_full_marks(step: str, container_engine: str, tmp_path: Path) -> None:
    stage = STAGES[step]
    code, results, out = grade(copy_step(step, tmp_path), "--stage", str(stage),
                               "--engine", container_engine, "--docker")  # fmt: skip
    assert code == 0, out
    full_marks(results, stage)
    assert not [t for t in results["tests"] if status(t) == "skipped" and
                t["extra_data"]["stage"] == 6], "stage 6 was not fully graded"  # fmt: skip


@pytest.mark.slow
def test_same_seed_same_results(tmp_path: Path) -> None:
    folder = copy_step("02-pipeline", tmp_path)
    runs = [grade(folder, "--stage", "2", "--seed", "7")[1] for _ in range(2)]
    for r in runs:
        r["extra_data"].pop("seconds")
    assert runs[0] == runs[1]
    hidden = [t for t in runs[0]["tests"] if t["visibility"] == "after_published"]
    assert hidden and all(t["extra_data"]["hidden"] for t in hidden)
