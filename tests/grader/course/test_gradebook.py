"""The course layers on the gradebook and the feedback: per-check columns, overrides in the
stage points and the total (raw), days late, penalty and final, the intake columns and the
reason of a missing submission; feedback.md and results.json show each change with its reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from grader.batch import gradebook as batch
from grader.batch.course.adjust import adjust, feedback, gradescope
from grader.batch.course.gradebook import extend
from grader.batch.course.late import parse_policy
from grader.batch.course.overrides import Override
from grader.batch.runner import redactor
from grader.results import render
from grader.results.report import FAILED, PASSED, SKIPPED, CheckResult, Report

DEADLINE = datetime(2027, 1, 15, 23, 59, 59, tzinfo=UTC)


def report(name: str, passed: bool) -> Report:
    checks = [
        CheckResult("1.1", "train.py runs", 1, 2, PASSED),
        CheckResult("1.4", "AUC floor", 1, 3, PASSED if passed else FAILED, "AUC 0.61"),
        CheckResult("3.2", "/ping", 3, 1, FAILED, "404"),
        CheckResult("6.8", "image builds", 6, 2, SKIPPED, "no engine"),
    ]
    return Report(f"/cohort/{name}", "credit", 7, 0, "test", checks)


def intake(hours_late: float) -> dict[str, str]:
    when = DEADLINE + timedelta(hours=hours_late)
    return {"url": "https://github.com/x/hw", "commit": "a" * 40, "committed_at": when.isoformat()}


def test_gradebook_columns() -> None:
    reports = {"ana": report("ana", True), "=evil": report("evil", False)}
    policy = parse_policy("grace=1h,per-day=10,cap=50")
    students = {
        "ana": adjust(
            reports["ana"],
            [Override("ana", "3.2", 1, "route typo")],
            intake(30),
            DEADLINE,
            policy,
            timedelta(0),
        ),
        "=evil": adjust(reports["=evil"], [], intake(-5), DEADLINE, policy, timedelta(0)),
        "dee": adjust(
            None,
            [],
            {"url": "https://github.com/d/hw", "reason": "404"},
            DEADLINE,
            policy,
            timedelta(0),
        ),
    }
    roster = batch.Roster([], {n: {"folder": n, "student_id": n} for n in students})
    header, rows = batch.gradebook_rows(reports, [1, 3, 6], roster)
    header, rows = extend(header, rows, students, reports, per_check=True, repos=True, late=True)
    assert header == [
        "student_id",
        "folder",
        "1 train",
        "3 fastapi",
        "6 docker",
        "1.1 train.py runs",
        "1.4 AUC floor",
        "3.2 /ping",
        "total",
        "max",
        "status",
        "repository",
        "commit",
        "committed_at",
        "days_late",
        "late_penalty",
        "final",
        "note",
    ]
    book = {row[1]: dict(zip(header, row, strict=True)) for row in rows}
    ana = book["ana"]
    assert (ana["3 fastapi"], ana["3.2 /ping"], ana["total"], ana["max"]) == ("1", "1", "6", "6")
    assert (ana["days_late"], ana["late_penalty"], ana["final"]) == ("2", "1.2", "4.8")
    assert ana["note"] == "1 manual override(s)" and ana["commit"] == "a" * 40
    evil = book["'=evil"]
    assert (evil["1.4 AUC floor"], evil["total"], evil["days_late"], evil["final"]) == (
        "0",
        "2",
        "0",
        "2",
    )
    dee = book["dee"]
    assert (dee["status"], dee["final"], dee["note"]) == ("no submission", "0", "404")


def test_feedback_and_results_show_the_changes() -> None:
    a = adjust(
        report("ana", True),
        [Override("ana", "3.2", 1, "route typo")],
        intake(30),
        DEADLINE,
        parse_policy("grace=1h,per-day=10,cap=50"),
        timedelta(0),
    )
    text = feedback("ana", a)
    assert "**Score: 4.8 / 6** (graded 5; see below)" in text
    assert "3.2 /ping: 0 → 1 of 1 points. Reason: route typo" in text
    assert "2 day(s) late: 20 % off, 1.2 points" in text
    assert "https://github.com/x/hw at commit `aaaaaaaaaaaa`" in text
    results = gradescope(a)
    assert results["score"] == 4.8
    ping = next(t for t in results["tests"] if t["number"] == "3.2")
    assert ping["score"] == 1 and ping["output"].startswith("Changed by your instructor")
    plain = adjust(report("bo", True), [], {}, None, None, timedelta(0))
    assert plain.report is not None
    assert feedback("bo", plain) == render.feedback(plain.report, "bo", redactor(plain.report))
