"""The submissions form, exported as CSV: one row per student with a repository URL.

Forms name their columns as the instructor wrote the questions, so each field is found by one
of several header names (case and spaces ignored):

    student        student, student_id, student id, email, email address, login, github
    repository     repo, repository, repository url, url, git url, github repository
    commit         commit, commit hash, sha (optional: else the last commit before the deadline)
    folder         folder, path, directory, subfolder (optional: the folder of the repository
                   to grade; else the upload rule finds it)
    submitted at   timestamp, submitted at, submitted, submission time (optional: the form's
                   own clock, for `--late-clock form`)

A student who sent the form twice is graded on the last row (by timestamp when there is one),
and the run says so. Rows without a student or a URL are reported, never dropped silently.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

FIELDS: dict[str, tuple[str, ...]] = {
    "student": ("student", "studentid", "email", "emailaddress", "login", "github", "username"),
    "url": ("repo", "repository", "repositoryurl", "url", "giturl", "githubrepository", "repourl"),
    "commit": ("commit", "commithash", "sha", "commitsha"),
    "folder": ("folder", "path", "directory", "subfolder"),
    "submitted": ("timestamp", "submittedat", "submitted", "submissiontime"),
}
SAFE_NAME = re.compile(r"[^A-Za-z0-9._@+-]")


@dataclass(frozen=True)
class Submission:
    """One student's row of the form."""

    student: str  # as the form has it (the gradebook's student_id)
    folder: str  # the student's folder name in OUT/students (derived from `student`)
    url: str
    commit: str = ""
    subdir: str = ""
    submitted_at: datetime | None = None
    line: int = 0


def _key(header: str) -> str:
    return re.sub(r"[^a-z0-9]", "", header.lower())


def folder_name(student: str) -> str:
    """A folder name for a student id: letters, digits and . _ @ + - only; no leading dot,
    underscore or dash (the batch ignores such folders)."""
    name = SAFE_NAME.sub("_", student.strip())[:100].lstrip("._-")
    return name or "student"


def parse_time(text: str) -> datetime:
    """An ISO 8601 time with its zone (`2027-01-15T23:59:59Z`, `+01:00`); a time without a
    zone is refused: a deadline must not depend on the grading machine's clock setting."""
    value = text.strip()
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO 8601 time (like 2027-01-15T23:59:59Z)") from None
    if parsed.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone: add Z (UTC) or an offset like +01:00")
    return parsed.astimezone(UTC)


def _columns(headers: list[str], path: Path) -> dict[str, str]:
    found: dict[str, str] = {}
    for header in headers:
        for field, names in FIELDS.items():
            if _key(header) in names and field not in found:
                found[field] = header
    missing = [{"url": "repository"}.get(f, f) for f in ("student", "url") if f not in found]
    if missing:
        has = ", ".join(headers) or "none"
        raise ValueError(
            f"{path}: no column for {' and '.join(missing)} (it has: {has}); name them e.g. "
            "`student` and `repository`"
        )
    return found


@dataclass(frozen=True)
class Form:
    submissions: list[Submission]  # one per student, sorted by folder
    problems: list[str]  # rows reported and not graded, duplicates resolved


def read_form(path: Path) -> Form:
    """The submissions of a form export; malformed rows become problems, not submissions."""
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        columns = _columns([h.strip() for h in reader.fieldnames or []], path)
        raw = [
            (
                {
                    (k or "").strip(): (v or "").strip()
                    for k, v in row.items()
                    if isinstance(v, str)
                },
                reader.line_num,
            )
            for row in reader
        ]
    problems: list[str] = []
    latest: dict[str, Submission] = {}
    for row, line in raw:
        student, url = row.get(columns["student"], ""), row.get(columns["url"], "")
        if not student or not url:
            what = "student" if not student else "repository URL"
            problems.append(f"line {line}: no {what}; the row is not graded")
            continue
        submitted = None
        if "submitted" in columns and row.get(columns["submitted"]):
            try:
                submitted = parse_time(row[columns["submitted"]])
            except ValueError as e:
                problems.append(f"line {line} ({student}): {e}; its time is not used")
        sub = Submission(
            student,
            folder_name(student),
            url,
            row.get(columns.get("commit", ""), "").lower(),
            row.get(columns.get("folder", ""), ""),
            submitted,
            line,
        )
        before = latest.get(sub.folder)
        if before is not None:
            if before.student != student:
                raise ValueError(
                    f"{path}: {before.student!r} (line {before.line}) and "
                    f"{student!r} (line {line}) share the folder name {sub.folder!r}:"
                    " make the student ids distinct"
                )
            keep = _later(before, sub)
            other = before if keep is sub else sub
            problems.append(
                f"{student} sent the form more than once: line {keep.line} is "
                f"graded, line {other.line} is not"
            )
            sub = keep
        latest[sub.folder] = sub
    return Form(sorted(latest.values(), key=lambda s: s.folder), problems)


def _later(a: Submission, b: Submission) -> Submission:
    """The row that counts: the later timestamp, else the later line of the file."""
    if a.submitted_at and b.submitted_at and a.submitted_at != b.submitted_at:
        return a if a.submitted_at > b.submitted_at else b
    return b
