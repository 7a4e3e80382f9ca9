"""Gradebooks an LMS imports: Canvas's and Moodle's CSV layouts, one assignment column.

Canvas (Grades > Import; Instructure's guide "How do I import grades in the Gradebook?", and
the importer itself, canvas-lms `GradebookImporter`): the header starts with `Student`, `ID`,
then optionally `SIS User ID`, `SIS Login ID`, then `Section`, then one column per assignment,
named `Title (canvas assignment id)` for an existing assignment or a new title (a new
assignment). A row whose first cell is `Points Possible` gives the assignments' points. Canvas
finds a student by `ID`, then `SIS User ID`, then `SIS Login ID`, then the name.

Moodle (Grades > Import > CSV file; docs.moodle.org "Grade import", and
grade/import/csv/classes/load_data.php): the import maps one column to a user field (user id,
`username`, `ID number` or `Email address`) and one column to a grade item (or a new one);
the layout is the one of Moodle's own export: `First name`, `Last name`, `ID number`,
`Institution`, `Department`, `Email address`, then the grade items.

Both take the ids from `--roster` (Canvas's or Moodle's own gradebook export with a `folder`
column added is a ready roster); a student of the roster without a submission gets 0.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping

CANVAS = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
CANVAS_IDS = ("ID", "SIS User ID", "SIS Login ID", "Student")
MOODLE = ("First name", "Last name", "ID number", "Institution", "Department", "Email address")
MOODLE_IDS = ("Email address", "ID number", "Username")
FORMATS = ("canvas", "moodle")


def _lookup(row: Mapping[str, str], column: str) -> str:
    """A roster cell by column name, case and spaces ignored."""
    want = column.replace(" ", "").lower()
    for name, value in row.items():
        if name.replace(" ", "").replace("_", "").lower() == want:
            return value.strip()
    return ""


def _missing_ids(rows: Mapping[str, Mapping[str, str]], ids: tuple[str, ...], lms: str) -> None:
    bad = sorted(folder for folder, row in rows.items() if not any(_lookup(row, c) for c in ids))
    if bad:
        raise ValueError(
            f"{lms}: the roster gives none of {', '.join(ids)} for "
            f"{', '.join(bad[:10])}{' …' if len(bad) > 10 else ''}: the LMS could "
            "not tell who they are"
        )


def canvas_rows(
    roster: Mapping[str, Mapping[str, str]],
    grades: Mapping[str, float],
    assignment: str,
    points: float,
) -> list[list[str]]:
    """Canvas's import layout: header, Points Possible, one row per student of the roster."""
    _missing_ids(roster, CANVAS_IDS, "canvas")
    rows = [[*CANVAS, assignment], ["Points Possible", "", "", "", "", f"{points:g}"]]
    for folder, row in sorted(roster.items(), key=lambda kv: _lookup(kv[1], "Student").lower()):
        cells = [_lookup(row, c) for c in CANVAS]
        rows.append([*cells, f"{grades.get(folder, 0.0):g}"])
    return rows


def moodle_rows(
    roster: Mapping[str, Mapping[str, str]], grades: Mapping[str, float], assignment: str
) -> list[list[str]]:
    """Moodle's import layout (that of its export): user fields, then one grade column."""
    _missing_ids(roster, MOODLE_IDS, "moodle")
    extra = ["Username"] if any(_lookup(r, "Username") for r in roster.values()) else []
    rows = [[*MOODLE, *extra, assignment]]
    for folder, row in sorted(roster.items(), key=lambda kv: _lookup(kv[1], "Last name").lower()):
        cells = [_lookup(row, c) for c in (*MOODLE, *extra)]
        rows.append([*cells, f"{grades.get(folder, 0.0):g}"])
    return rows


def to_csv(rows: list[list[str]]) -> str:
    """The file's text: to be written UTF-8 without a BOM (both importers read the header's
    first cell as is), CRLF line ends."""
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue()
