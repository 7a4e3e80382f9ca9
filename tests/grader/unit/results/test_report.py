"""grader/results/report.py: the one results model and the run's maximum."""

from __future__ import annotations

from grader.batch import gradebook as book
from grader.results.report import FAILED, PASSED, SKIPPED, Report, max_points
from tests.grader_helpers import fake_report


def test_the_runs_maximum_is_the_references_whatever_else_the_cohort_holds() -> None:
    """An empty upload (every check failed in one line) and a blank template (answers blank:
    failed) beside the reference: one maximum, the reference's score; what the run did not
    grade (no engine: skipped for everyone) counts for nobody."""
    checks = {"1.1": 2, "1.50": 1, "6.9": 2, "6.50": 1}

    def student(status: dict[str, str], output: str = "") -> Report:
        return fake_report({cid: (status.get(cid, PASSED), p, output) for cid, p in checks.items()})

    skipped = {"6.9": SKIPPED, "6.50": SKIPPED}
    reference = student(skipped)
    empty = student({"1.1": FAILED, "1.50": FAILED, **skipped}, "not graded: the upload is empty")
    empty.verdict = "the upload is empty: it holds none of the files of the homework"
    blank = student({"1.50": FAILED, **skipped}, "[train] auc in answers.toml is not answered")
    reports = {"empty": empty, "blank": blank, "reference": reference}
    total, _ = max_points(reports.values())
    assert total == reference.score == reference.max_score == 3
    assert {r.max_score for r in reports.values()} == {3}
    _, rows = book.gradebook_rows(reports, [1, 6])
    assert {row[-2] for row in rows} == {"3"} and rows[-1][-3] == "3"
