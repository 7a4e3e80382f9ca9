"""The gradebook's course columns, added to the batch's own (`grader.batch.gradebook_rows`).

Stage points and `total` become the points after overrides (`total` is the raw score: before
any late penalty); `--per-check` adds one column per check (`1.1 train.py runs`, …) before
`total`; with `--repos`, `repository`, `commit` and `committed_at`; with `--late`, `days_late`
and `late_penalty`; then `final` (what to put in the LMS) and `note` (why a student has no
submission, how many overrides).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from grader.batch.course.adjust import Adjusted
from grader.results.render import clean_name
from grader.results.report import SKIPPED, Report, parse_check_id


def cell(text: str) -> str:
    """As batch.spreadsheet_cell: never a formula in a spreadsheet."""
    text = clean_name(text) if text else ""
    return "'" + text if text.startswith(("=", "+", "-", "@", "\t", "\r")) else text


def check_columns(reports: Mapping[str, Report]) -> list[tuple[str, str]]:
    """(id, header) of every check graded for at least one student, in check order."""
    titles: dict[str, str] = {}
    for report in reports.values():
        for c in report.checks:
            if c.status != SKIPPED:
                titles[c.id] = clean_name(c.title)
    return [(cid, f"{cid} {titles[cid]}") for cid in sorted(titles, key=parse_check_id)]


def extend(
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    students: Mapping[str, Adjusted],
    reports: Mapping[str, Report],
    per_check: bool,
    repos: bool,
    late: bool,
) -> tuple[list[str], list[list[str]]]:
    """The gradebook with the course columns; rows are matched on the `folder` column."""
    folder_at, total_at = header.index("folder"), header.index("total")
    stage_at = {int(h.split()[0]): i for i, h in enumerate(header) if h.split()[0].isdigit()}
    checks = check_columns(reports) if per_check else []
    extra = (
        (["repository", "commit", "committed_at"] if repos else [])
        + (["days_late", "late_penalty"] if late else [])
        + ["final", "note"]
    )
    new_header = [*header[:total_at], *(h for _, h in checks), *header[total_at:], *extra]
    by_cell = {cell(name): name for name in students}
    new_rows = []
    for row in rows:
        row = list(row)
        a = students.get(by_cell.get(row[folder_at], ""))
        if a is None or a.report is None:
            reason = clean_name(str(a.intake.get("reason", ""))) if a else ""
            intake = a.intake if a else {}
            values = [""] * len(checks)
            tail = _intake(intake, repos) + (["", ""] if late else []) + ["0", cell(reason)]
        else:
            for stage, points in a.stage_scores().items():
                if stage in stage_at:
                    row[stage_at[stage]] = f"{points:g}"
            row[total_at] = f"{a.raw:g}"
            values = [f"{a.scores[cid]:g}" if cid in a.scores else "" for cid, _ in checks]
            note = f"{len(a.applied)} manual override(s)" if a.applied else ""
            days = a.late.days_late if a.late else 0
            tail = (
                _intake(a.intake, repos)
                + ([str(days), f"{a.penalty:g}"] if late else [])
                + [f"{a.final:g}", note]
            )
        new_rows.append([*row[:total_at], *values, *row[total_at:], *tail])
    return new_header, new_rows


def _intake(intake: Mapping[str, object], repos: bool) -> list[str]:
    if not repos:
        return []
    return [
        cell(str(intake.get("url", ""))),
        str(intake.get("commit", ""))[:40],
        str(intake.get("committed_at", "")),
    ]


def finals(students: Mapping[str, Adjusted]) -> dict[str, float]:
    """What each student's LMS cell gets."""
    return {name: a.final for name, a in students.items() if a.report is not None}
