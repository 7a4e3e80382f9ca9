"""Manual overrides: the instructor's points for one check of one student, with a reason.

    student,check,points,reason
    ana@uni.edu,6.8,3,"image built by hand: the grader's engine was down"

`points` replaces what the check scored (0 up to the check's points). The grader's own record
(report.json) is never changed: overrides are applied on top of it at the end of every run,
resume and merge, so a regrade keeps them; the student's feedback shows each one with its
reason, and the cohort report lists them all (and those that could not be applied).
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path

from grader.results.render import clean_name
from grader.results.report import SKIPPED, Report, parse_check_id


@dataclass(frozen=True)
class Override:
    student: str  # the student's folder name
    check: str
    points: float
    reason: str
    line: int = 0


@dataclass(frozen=True)
class Applied:
    override: Override
    title: str
    before: float
    out_of: float


def read_overrides(path: Path) -> list[Override]:
    """The overrides file; a malformed row stops the run with its line number."""
    found: list[Override] = []
    seen: set[tuple[str, str]] = set()
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        fields = {(h or "").strip().lower(): h for h in reader.fieldnames or []}
        need = ("student", "check", "points", "reason")
        if any(n not in fields for n in need):
            raise ValueError(f"{path}: overrides need the columns {', '.join(need)}")
        for row in reader:
            where = f"{path} line {reader.line_num}"
            student, check, points, reason = ((row.get(fields[n]) or "").strip() for n in need)
            try:
                parse_check_id(check)
                value = float(points)
            except ValueError as e:
                raise ValueError(f"{where}: {e}") from None
            if not student or not reason or value < 0:
                raise ValueError(f"{where}: a student, points >= 0 and a reason are needed")
            if (student, check) in seen:
                raise ValueError(f"{where}: a second override of {check} for {student}")
            seen.add((student, check))
            found.append(Override(student, check, value, reason, reader.line_num))
    return found


def fingerprint(path: Path) -> str:
    """sha256 of the file as applied (the audit names the version of the file)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def apply(
    report: Report, overrides: list[Override]
) -> tuple[dict[str, float], list[Applied], list[str]]:
    """Each check's score after this student's overrides, what was applied, and what could not
    be (unknown or skipped check, points above the check's)."""
    scores = {c.id: c.score for c in report.checks}
    checks = {c.id: c for c in report.checks}
    applied, problems = [], []
    for o in overrides:
        check = checks.get(o.check)
        if check is None:
            problems.append(f"{o.student} {o.check}: no such check in this student's grading")
        elif check.status == SKIPPED:
            problems.append(
                f"{o.student} {o.check}: the check was not graded (skipped), so it "
                "counts for no one; an override cannot add it"
            )
        elif o.points > check.points:
            problems.append(
                f"{o.student} {o.check}: {o.points:g} points, but the check is worth "
                f"{check.points:g}"
            )
        else:
            applied.append(Applied(o, clean_name(check.title), scores[o.check], check.points))
            scores[o.check] = o.points
    return scores, applied, problems
