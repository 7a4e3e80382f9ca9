"""Overrides: the file is read strictly; applied on top of the grader's record (which is never
changed), refused for unknown or skipped checks and for more points than a check has."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.batch.course.overrides import apply, read_overrides
from grader.results.report import FAILED, PASSED, SKIPPED, CheckResult, Report


def report() -> Report:
    checks = [
        CheckResult("1.1", "train.py runs", 1, 2, PASSED),
        CheckResult("3.2", "/ping answers", 3, 1, FAILED, "404"),
        CheckResult("6.8", "the image builds", 6, 3, SKIPPED, "no engine"),
    ]
    return Report("/x/ana", "credit", 7, 0, "test", checks)


def test_the_file_is_read_strictly(tmp_path: Path) -> None:
    path = tmp_path / "o.csv"
    path.write_text('student,check,points,reason\nana,3.2,1,"route was /ping/, fine"\n')
    [o] = read_overrides(path)
    assert (o.student, o.check, o.points, o.reason, o.line) == (
        "ana",
        "3.2",
        1.0,
        "route was /ping/, fine",
        2,
    )
    for bad, why in (
        ("student,check,points\n", "columns"),
        ("student,check,points,reason\nana,3,1,x\n", "STAGE.N"),
        ("student,check,points,reason\nana,3.2,-1,x\n", "points >= 0"),
        ("student,check,points,reason\nana,3.2,1,\n", "reason"),
        ("student,check,points,reason\nana,3.2,1,x\nana,3.2,0,y\n", "second"),
    ):
        path.write_text(bad)
        with pytest.raises(ValueError, match=why):
            read_overrides(path)


def test_applied_on_top_of_the_record(tmp_path: Path) -> None:
    path = tmp_path / "o.csv"
    path.write_text(
        "student,check,points,reason\nana,3.2,1,a\nana,1.1,0,b\nana,6.8,3,c\n"
        "ana,9.9,1,d\nana,3.2x,1,e\n".replace("ana,3.2x,1,e\n", "")
    )
    r = report()
    scores, applied, problems = apply(r, read_overrides(path))
    assert scores == {"1.1": 0.0, "3.2": 1.0, "6.8": 0.0}
    assert [(a.override.check, a.before, a.out_of) for a in applied] == [
        ("3.2", 0, 1),
        ("1.1", 2, 2),
    ]
    assert any("6.8" in p and "skipped" in p for p in problems)
    assert any("9.9" in p and "no such check" in p for p in problems)
    assert r.score == 2 and r.checks[1].status == FAILED, "the grader's record is unchanged"
    path.write_text("student,check,points,reason\nana,3.2,5,too many\n")
    _, applied, problems = apply(r, read_overrides(path))
    assert not applied and "worth 1" in problems[0]
