"""grader/batch/cohort.py: the cohort report."""

from __future__ import annotations

from pathlib import Path

from grader.batch import cohort, runner
from grader.results import render
from grader.results.report import FAILED, PASSED, SKIPPED, RunInfo
from tests.grader_helpers import fake_report


def test_cohort_report_lists_verdicts_and_counts_causes_only(tmp_path: Path) -> None:
    crash = fake_report(
        {
            "3.1": (FAILED, 2, "`uvicorn predict:app --port 9696` exited with code 1"),
            "3.2": (FAILED, 1, "not checked because 3.1 failed"),
            "4.1": (FAILED, 1, "not checked because 3.1 failed"),
        }
    )
    churn = fake_report({"1.1": (FAILED, 2, "train.py did not finish")})
    churn.verdict = "this looks like the churn service of the lessons, not the homework"
    no_engine = fake_report({"3.1": (PASSED, 2, ""), "6.9": (SKIPPED, 2, "no engine")})
    engine = fake_report({"3.1": (PASSED, 2, ""), "6.9": (PASSED, 2, "")})
    reports = {"crash": crash, "churn": churn, "odd": no_engine, "ok": engine}
    top = cohort.failures(reports)
    assert [(name.split()[0], n) for name, _, n in top] == [("3.1", 1), ("1.1", 1)], top
    assert not any("not checked because" in message for _, message, _ in top)
    rows = dict(cohort.look_at(reports))
    assert rows["churn"].startswith("this looks like the churn service")
    assert "6.9 not graded for this student, but for others" in rows["odd"]
    text = render.feedback(crash, "crash", runner.redactor(crash))
    assert "- 3.2, 4.1: not checked because 3.1 failed" in text
    assert text.count("not checked because") == 1 and "### 3.2" not in text


def test_cohort_report_names_the_run_and_shows_every_check(tmp_path: Path) -> None:
    everyone = {
        f"s{i}": fake_report(
            {
                "1.1": (PASSED if i % 2 else FAILED, 2, "train.py crashed"),
                "2.1": (PASSED, 1, ""),
                "2.2": (FAILED, 1, "never passes"),
            }
        )
        for i in range(6)
    }
    everyone["s0"].notes = ["Graded the folder credit-card-hw/ of your upload."]
    run = RunInfo(
        "20261128-120000-abcdef", "2026-11-28 12:00 UTC", "credit", engine="podman", seeded=True
    )
    text = cohort.write_report(tmp_path, everyone, run).read_text()
    for png in ("scores.png", "pass-rates.png", "failures.png"):
        assert (tmp_path / "charts" / png).stat().st_size > 1000
        assert f"charts/{png}" in text
    for fact in ("credit spec", "engine podman", "2026-11-28 12:00 UTC", "20261128-120000-abcdef"):
        assert fact in text
    assert "987654321" not in text
    assert "| 1.1 check 1.1 | 50 % | 6 |" in text and "| 2.2 check 2.2 | 0 % | 6 |" in text
    assert "train.py crashed | 3 |" in text
    assert "- s0: Graded the folder credit-card-hw/ of your upload." in text
