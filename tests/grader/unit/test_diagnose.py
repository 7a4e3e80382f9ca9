"""grader/diagnose.py: the ML mistakes behind a model's numbers."""

from __future__ import annotations

from pathlib import Path

from grader import diagnose
from grader.specs import CREDIT


def test_training_mistakes_are_recognised(credit_csv: Path) -> None:
    data = CREDIT.load(credit_csv)
    ref = diagnose.reference(CREDIT, data)
    assert diagnose.trained_on_all_rows(CREDIT, data, ref.all_fit)
    assert not diagnose.trained_on_all_rows(CREDIT, data, ref.train_fit)
    assert diagnose.leaking(CREDIT, ["age", "share", "expenditure", "owner=yes"]) == [
        "share",
        "expenditure",
    ]
    assert diagnose.leaking(CREDIT, ["age", "owner=yes"]) == []
