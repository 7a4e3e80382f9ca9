"""LMS layouts, checked against each format's documented columns: Canvas's gradebook import
(its importer wants `Student`, `ID`, then `SIS User ID`, `SIS Login ID`, then `Section`, then
the assignments, and reads a `Points Possible` row) and Moodle's CSV grade import (the layout of
its export: `First name`, `Last name`, `ID number`, `Institution`, `Department`, `Email
address`, then the grade items; one column mapped to a user field)."""

from __future__ import annotations

import csv
import io

import pytest

from grader.batch.course.lms import canvas_rows, moodle_rows, to_csv

CANVAS_ROSTER = {
    "ana": {
        "folder": "ana",
        "student_id": "1",
        "Student": "Díaz, Ana",
        "ID": "101",
        "SIS User ID": "S1",
        "SIS Login ID": "ana@uni.edu",
        "Section": "A",
    },
    "ben": {
        "folder": "ben",
        "student_id": "2",
        "Student": "Berg, Ben",
        "ID": "102",
        "SIS User ID": "",
        "SIS Login ID": "ben@uni.edu",
        "Section": "A",
    },
}
MOODLE_ROSTER = {
    "ana": {
        "folder": "ana",
        "student_id": "1",
        "first name": "Ana",
        "last name": "Díaz",
        "email address": "ana@uni.edu",
        "ID number": "S1",
    },
    "ben": {
        "folder": "ben",
        "student_id": "2",
        "First name": "Ben",
        "Last name": "Berg",
        "Email address": "ben@uni.edu",
    },
}


def parsed(rows: list[list[str]]) -> list[list[str]]:
    return list(csv.reader(io.StringIO(to_csv(rows))))


def test_canvas_layout_as_its_importer_reads_it() -> None:
    rows = parsed(canvas_rows(CANVAS_ROSTER, {"ana": 55.5}, "Credit card homework (4711)", 62))
    header = rows[0]
    # GradebookImporter: row[0] includes "Student", row[1] includes "ID", SIS User ID and SIS
    # Login ID next, Section the last student column, then the assignments.
    assert header == [
        "Student",
        "ID",
        "SIS User ID",
        "SIS Login ID",
        "Section",
        "Credit card homework (4711)",
    ]
    assert rows[1][0] == "Points Possible" and rows[1][-1] == "62"
    assert rows[2] == ["Berg, Ben", "102", "", "ben@uni.edu", "A", "0"], "no submission: 0"
    assert rows[3] == ["Díaz, Ana", "101", "S1", "ana@uni.edu", "A", "55.5"]
    assert not to_csv(rows).startswith("\ufeff")


def test_moodle_layout_is_that_of_its_export() -> None:
    rows = parsed(moodle_rows(MOODLE_ROSTER, {"ana": 60, "ben": 12}, "Credit card homework"))
    assert rows[0] == [
        "First name",
        "Last name",
        "ID number",
        "Institution",
        "Department",
        "Email address",
        "Credit card homework",
    ]
    assert rows[1] == ["Ben", "Berg", "", "", "", "ben@uni.edu", "12"]
    assert rows[2] == ["Ana", "Díaz", "S1", "", "", "ana@uni.edu", "60"]


def test_a_roster_without_the_lms_ids_is_refused() -> None:
    roster = {"cy": {"folder": "cy", "student_id": "3"}}
    with pytest.raises(ValueError, match=r"canvas.*cy"):
        canvas_rows(roster, {}, "x", 1)
    with pytest.raises(ValueError, match=r"moodle.*Email address"):
        moodle_rows(roster, {}, "x")
