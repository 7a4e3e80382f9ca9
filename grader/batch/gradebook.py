"""The gradebook: the roster, one row per student, CSV a spreadsheet opens safely."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from grader.batch.runner import GRADEBOOK
from grader.results.atomic import write_atomic
from grader.results.render import clean_name
from grader.results.report import STAGE_NAMES, Report, max_points


def spreadsheet_cell(text: str) -> str:
    """A CSV cell no spreadsheet reads as a formula (a folder named `=HYPERLINK(...)`)."""
    text = clean_name(text)
    return "'" + text if text.startswith(("=", "+", "-", "@", "\t", "\r")) else text


@dataclass(frozen=True)
class Roster:
    """roster.csv: a `folder` column (the student's folder name), `student_id`, and any other
    columns (login, email, ...) that the gradebook carries over."""

    columns: list[str]  # the other columns, in the file's order
    rows: dict[str, dict[str, str]]  # by folder

    @classmethod
    def read(cls, path: Path) -> Roster:
        """The roster; a malformed or duplicate row raises ValueError naming every one (with
        its line), never a row silently cut or dropped."""
        with path.open(encoding="utf-8-sig", newline="") as f:
            reader = csv.DictReader(f)
            fields = [name.strip() for name in reader.fieldnames or []]
            if "folder" not in fields or "student_id" not in fields:
                raise ValueError(
                    f"{path}: the roster needs the columns folder and student_id "
                    f"(it has: {', '.join(fields) or 'none'})"
                )
            reader.fieldnames = fields
            rows, problems = _rows(reader, len(fields))
        if problems:
            shown = "; ".join(problems[:10]) + ("; ..." if len(problems) > 10 else "")
            raise ValueError(f"{path}: {len(problems)} roster row(s) to fix: {shown}")
        others = [c for c in fields if c not in ("folder", "student_id")]
        return cls(others, rows)


def _rows(reader: csv.DictReader[str], columns: int) -> tuple[dict[str, dict[str, str]], list[str]]:
    """The roster's rows by folder, and what is wrong with the others (by line)."""
    rows: dict[str, dict[str, str]] = {}
    seen: dict[str, int] = {}  # "folder x" / "student_id y" -> its line
    problems = []
    for raw in reader:
        line = reader.line_num
        extra = [str(v).strip() for v in raw.pop(None, None) or []]
        row = {k.strip(): (v or "").strip() for k, v in raw.items() if k}
        if not any(row.values()) and not any(extra):
            continue  # a blank line
        if extra:  # more cells than the header: a comma in an unquoted name?
            problems.append(f"line {line} has more than {columns} cells (quote a comma)")
        keys = [f"{name} {row.get(name, '')!r}" for name in ("folder", "student_id")]
        missing = [name for name in ("folder", "student_id") if not row.get(name)]
        again = [f"{key} again (line {seen[key]})" for key in keys if key in seen]
        if missing or again:
            problems.append(f"line {line}: " + ", ".join([*(f"no {m}" for m in missing), *again]))
            continue
        rows[row["folder"]] = row
        seen.update(dict.fromkeys(keys, line))
    return rows, problems


def gradebook_rows(
    reports: Mapping[str, Report], stages: Sequence[int] = (), roster: Roster | None = None
) -> tuple[list[str], list[list[str]]]:
    """Header and rows: student_id, folder, roster columns, points per stage, total, max, status.
    Students of the roster without a folder get a row too (status `no submission`)."""
    total_max, _ = max_points(reports.values())
    stages = sorted(set(stages) | {s for r in reports.values() for s in r.stage_scores()})
    extra = roster.columns if roster else []
    names = [f"{s} {STAGE_NAMES.get(s, '')}".strip() for s in stages]
    header = ["student_id", "folder", *extra, *names, "total", "max", "status"]
    folders = sorted(set(reports) | set(roster.rows if roster else {}))
    rows = []
    for folder in folders:
        known = roster.rows.get(folder, {}) if roster else {"student_id": folder}
        report = reports.get(folder)
        if report is None:
            scores, total, status = {}, 0.0, "no submission"
        else:
            scores = {s: got for s, (got, _) in report.stage_scores().items()}
            total = report.score
            status = "grader error" if report.error else "graded"
            if report.error and report.verdict:  # an upload that could not be unpacked
                status = "upload refused"
            if roster and folder not in roster.rows:
                status += " (not in the roster)"
        row = [known.get("student_id", ""), folder, *(known.get(c, "") for c in extra)]
        row += [f"{scores.get(s, 0.0):g}" for s in stages]
        row += [f"{total:g}", f"{total_max:g}", status]
        rows.append([spreadsheet_cell(cell) for cell in row])
    return header, rows


def write_gradebook(
    out: Path,
    reports: Mapping[str, Report],
    stages: Sequence[int],
    roster: Roster | None,
    extend: Callable[..., tuple[list[str], list[list[str]]]] | None = None,
) -> Path:
    """OUT/gradebook.csv: UTF-8 with a BOM (Excel reads names right), CRLF as RFC 4180 says.
    `extend` adds the course columns (grader.batch.course.gradebook)."""
    header, rows = gradebook_rows(reports, stages, roster)
    if extend is not None:
        header, rows = extend(header, rows)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    path = out / GRADEBOOK
    write_atomic(path, buffer.getvalue(), bom=True)
    return path
