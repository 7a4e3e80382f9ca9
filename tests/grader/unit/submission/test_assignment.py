"""grader/submission/assignment.py: what the upload is."""

from __future__ import annotations

from pathlib import Path

from grader.specs import CHURN, CREDIT, SPECS
from grader.submission import assignment
from tests.support import ROOT


def test_an_empty_upload_and_another_assignment_get_a_verdict(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("I will do it later")
    empty = assignment.verdict(tmp_path, CREDIT, SPECS.values())
    assert empty.empty and "the upload is empty" in empty.text
    churn = assignment.verdict(ROOT / "07-flyio", CREDIT, SPECS.values())
    assert not churn.empty and churn.text.startswith("this looks like the churn service")
    assert "CHURN_DATA" in churn.text
    for folder in ("solutions", "homework"):  # the template mentions the homework's data
        assert assignment.verdict(ROOT / folder, CREDIT, SPECS.values()).text == "", folder
    assert assignment.verdict(ROOT / "07-flyio", CHURN, SPECS.values()).text == ""
