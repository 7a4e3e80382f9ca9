"""The cohort report's course sections: intake, late work, overrides, live deployments, similar
code and the audit (appended to OUT/report.md by `grader.cohort.write_report`)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from grader.batch.course import similarity
from grader.batch.course.adjust import STAMP, Adjusted, read_json
from grader.batch.course.audit import Audit, differences
from grader.batch.course.intake import Form
from grader.batch.course.options import Settings
from grader.results.render import clean_name
from grader.results.report import FAILED, Report


def _cell(text: object) -> str:
    return clean_name(str(text)).replace("|", "\\|")


def intake(students: Mapping[str, Adjusted], form: Form | None) -> list[str]:
    recorded = sum(1 for a in students.values() if a.intake)
    if form is None and not recorded:
        return []
    missing = [
        (n, a.intake.get("reason", ""))
        for n, a in students.items()
        if a.report is None and a.intake.get("reason")
    ]
    lines = [
        "## Intake from the students' repositories",
        "",
        f"{len(form.submissions) if form else recorded} students in the form; {len(missing)} "
        "without a gradable submission.",
        "",
    ]
    if missing:
        lines += ["| student | no submission because |", "|---|---|"]
        lines += [f"| {_cell(n)} | {_cell(why)} |" for n, why in missing] + [""]
    if form is not None and form.problems:
        lines += ["Rows of the form that need a look:", ""]
        lines += [f"- {_cell(p)}" for p in form.problems] + [""]
    return lines


def late(students: Mapping[str, Adjusted], settings: Settings) -> list[str]:
    if settings.late is None:
        return []
    rows = [(n, a) for n, a in students.items() if a.late and a.late.days_late]
    lines = ["## Late submissions", "", f"Policy: {settings.late.describe()}.", ""]
    if not rows:
        return [*lines, "Nobody was late.", ""]
    lines += ["| student | days late | penalty | final |", "|---|---|---|---|"]
    for name, a in rows:
        assert a.late is not None
        lines.append(
            f"| {_cell(name)} | {a.late.days_late} | {a.late.penalty_percent:g} % "
            f"({a.penalty:g} points) | {a.final:g} |"
        )
    return [*lines, ""]


def overrides(students: Mapping[str, Adjusted], settings: Settings) -> list[str]:
    if not settings.overrides:
        return []
    lines = [
        "## Manual overrides",
        "",
        f"From {_cell(settings.overrides_file)} (sha256 "
        f"{settings.recorded.get('overrides_sha256', '?')}).",
        "",
        "| student | check | grader | override | reason |",
        "|---|---|---|---|---|",
    ]
    problems = []
    for name, a in students.items():
        for x in a.applied:
            lines.append(
                f"| {_cell(name)} | {x.override.check} {_cell(x.title)} | "
                f"{x.before:g} | {x.override.points:g} / {x.out_of:g} | "
                f"{_cell(x.override.reason)} |"
            )
        problems += a.problems
    known = set(students)
    from grader.batch.course.intake import folder_name

    problems += [
        f"{o.student} {o.check}: no such student in this output folder"
        for o in settings.overrides
        if folder_name(o.student) not in known
    ]
    if problems:
        lines += ["", "**Not applied:**", ""] + [f"- {_cell(p)}" for p in problems]
    return [*lines, ""]


def live_section(reports: Mapping[str, Report], settings: Settings) -> list[str]:
    if not settings.live:
        return []
    refused = [
        (n, c.output)
        for n, r in sorted(reports.items())
        for c in r.checks
        if c.stage == 7 and c.status == FAILED and "was not probed" in c.output
    ]
    seen: dict[str, str] = {}
    for name, why in refused:
        seen.setdefault(name, why.split("probed: ", 1)[-1])
    lines = [
        "## Live deployments",
        "",
        f"{len(reports) - len(seen)} deployments probed with stage 7's checks; "
        f"{len(seen)} not probed.",
        "",
    ]
    if seen:
        lines += ["| student | not probed because |", "|---|---|"]
        lines += [f"| {_cell(n)} | {_cell(why)} |" for n, why in seen.items()] + [""]
    return lines


def similar(reports: Mapping[str, Report]) -> list[str]:
    roots = {
        n: Path(r.submission)
        for n, r in reports.items()
        if r.submission and Path(r.submission).is_dir()
    }
    if len(roots) < 2:
        return []
    boiler = similarity.boilerplate_roots()
    matches, files = similarity.find(roots, boiler)
    lines = similarity.section(matches, files, len(roots), boiler)
    if len(roots) < len(reports):
        lines.insert(
            3, f"({len(reports) - len(roots)} students' code is not on this machine: not compared.)"
        )
    return lines


def audit_section(out: Path, reports: Mapping[str, Report], record: Audit) -> list[str]:
    stamps = {n: read_json(out / "students" / n / STAMP) for n in reports}
    stamped = {n: s for n, s in stamps.items() if s}
    lines = [
        "## Audit",
        "",
        f"This run: grader {record.grader_commit}, engine {record.engine_version}, seed "
        f"fingerprint {record.seed_fingerprint} (audit key {record.audit_key_id}). Every "
        "run is appended to audit.jsonl; each student's audit.json names the run that "
        "graded them.",
        "",
    ]
    if record.test_only_loopback:
        lines[2:2] = ["**The test-only loopback switch was on: not a real grading.**", ""]
    lines += differences(stamped) or [
        "Every student was graded with the same seed, grader, spec and engine."
    ]
    if len(stamped) < len(reports):
        lines.append(
            f"{len(reports) - len(stamped)} students have no audit stamp (graded "
            "before stamps existed, or by hand)."
        )
    return [*lines, ""]


def lines(
    out: Path,
    reports: Mapping[str, Report],
    students: Mapping[str, Adjusted],
    settings: Settings,
    form: Form | None,
    record: Audit,
) -> list[str]:
    return [
        *intake(students, form),
        *late(students, settings),
        *overrides(students, settings),
        *live_section(reports, settings),
        *similar(reports),
        *audit_section(out, reports, record),
    ]
