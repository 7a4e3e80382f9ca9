"""The course options: validated before anything is graded, and remembered per output folder
(an overrides file applies to every later run; a resume cannot change the deadline)."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.batch import main as batch
from grader.batch.course.options import save, settings


def parse(*argv: str) -> object:
    return batch.build_parser().parse_args(list(argv))


def test_bad_combinations_are_refused_before_grading(tmp_path: Path) -> None:
    out = ["--out", str(tmp_path)]
    cases = [
        ((*out, "--repos", "form.csv"), "go together"),
        ((*out, "--repos", "f.csv", "--deadline", "2027-01-15T23:59:59"), "time zone"),
        ((*out, "subs", "--late", "per-day=10"), "needs --deadline"),
        (
            (*out, "--repos", "f.csv", "--deadline", "2027-01-15T23:59:59Z", "--late", "cap=5"),
            "per-day",
        ),
        ((*out, "subs", "--lms", "canvas"), "needs --roster"),
        ((*out, "subs", "--live", "--only", "1,2"), "stage 7"),
        ((*out, "subs", "--overrides", str(tmp_path / "none.csv")), "missing"),
    ]
    for argv, why in cases:
        with pytest.raises(ValueError, match=why):
            settings(parse(*argv), tmp_path)  # type: ignore[arg-type]


def test_overrides_and_deadline_are_remembered(tmp_path: Path) -> None:
    overrides = tmp_path / "o.csv"
    overrides.write_text("student,check,points,reason\nana,1.1,0,copied\n")
    deadline = ("--repos", "f.csv", "--deadline", "2027-01-15T23:59:59Z")
    first = settings(
        parse("--out", str(tmp_path), *deadline, "--overrides", str(overrides), "--per-check"),
        tmp_path,
    )  # type: ignore[arg-type]
    save(tmp_path, first)
    later = settings(parse("--out", str(tmp_path), *deadline, "--resume"), tmp_path)  # type: ignore[arg-type]
    assert [o.reason for o in later.overrides] == ["copied"] and later.per_check
    assert later.recorded["overrides_sha256"]
    with pytest.raises(ValueError, match="must keep it"):
        settings(
            parse(
                "--out",
                str(tmp_path),
                "--repos",
                "f.csv",
                "--deadline",
                "2027-02-01T00:00:00Z",
                "--resume",
            ),
            tmp_path,
        )  # type: ignore[arg-type]
