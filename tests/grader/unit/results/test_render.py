"""grader/results/render.py: Gradescope's results.json and feedback.md."""

from __future__ import annotations

import json

from grader.batch import runner
from grader.results import render
from grader.results.report import FAILED, PASSED, SKIPPED, CheckResult, Report
from tests.grader_helpers import fake_report, valid_gradescope


def test_gradescope_format() -> None:
    checks = [
        CheckResult("1.1", "train.py runs", 1, 2, "passed"),
        CheckResult("1.5", "seeded", 1, 1, "failed", "fix it", hidden=True),
        CheckResult("6.9", "builds", 6, 2, "skipped", "no engine"),
    ]
    report = Report("x", "churn", 6, 3, "test", checks)
    data = render.gradescope(report, render.Redactor(report.submission))
    valid_gradescope(data)  # Gradescope's documented format: no other top-level key or status
    assert (data["score"], data["extra_data"]["max_score"]) == (2, 3)
    names = [(t["number"], t["name"]) for t in data["tests"]]
    assert names == [("1.1", "train.py runs"), ("1.5", "seeded"), ("6.9", "builds")]
    hidden = data["tests"][1]
    assert hidden["visibility"] == "after_published" and hidden["extra_data"]["stage"] == 1
    assert {"name", "score", "max_score", "status", "output", "visibility"} <= set(hidden)
    # not graded here: an informational test, counted for neither side, that says why
    skipped = data["tests"][2]
    assert "status" not in skipped and "score" not in skipped and "max_score" not in skipped
    assert "skipped" in skipped["tags"] and skipped["output"] == "Skipped, not counted: no engine"


def test_feedback_hides_hidden_details_and_the_seed() -> None:
    path = "/home/teacher/cohort/x/predict.py"
    alice = fake_report(
        {
            "1.1": (PASSED, 2, ""),
            "1.9": (FAILED, 1, "secret record"),
            "3.2": (FAILED, 1, f"no /ping in {path}"),
        }
    )
    assert alice.stage_scores() == {1: (2.0, 3.0), 3: (0.0, 1.0)}
    text = render.feedback(alice, "alice", runner.redactor(alice))
    assert "Score: 2 / 4" in text and "no /ping in ./predict.py" in text
    assert "secret record" not in text, "hidden checks' details stay hidden"
    assert "987654321" not in text and "/home/teacher" not in text


def test_gradescope_names_do_not_repeat_their_number_and_hold_no_seed() -> None:
    report = fake_report({"1.1": (PASSED, 2, ""), "6.9": (SKIPPED, 2, "no engine")})
    data = render.gradescope(report, runner.redactor(report))
    assert [(t["number"], t["name"]) for t in data["tests"]] == [
        ("1.1", "check 1.1"),
        ("6.9", "check 6.9"),
    ]
    assert "987654321" not in json.dumps(data) and "seed" not in data["extra_data"]
    assert data["extra_data"]["submission"] == "."
