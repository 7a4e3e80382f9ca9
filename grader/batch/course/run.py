"""`CourseRun`: what `grade batch` calls for the course-scale options, at five points.

start    the settings (grader.batch.course.options), the audit record of the run
intake   with --repos: each student of this shard cloned at the commit the deadline selects
         (OUT/checkouts/NAME, the record in OUT/students/NAME/intake.json); with --live:
         each student's deployment checked before their grading
command  the student's grader command (--url, pinned, with --live)
graded   the student's report: live checks failed with the reason of a refusal; the audit
         stamp (OUT/students/NAME/audit.json) beside it
finish   the gradebook's course columns, LMS files, feedback with overrides and lateness,
         and the cohort report's sections
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import json
import shutil
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol, TypeVar

from grader.batch.course import audit, live, loopback_allowed, report_sections
from grader.batch.course.adjust import (
    INTAKE,
    STAMP,
    Adjusted,
    adjust,
    feedback,
    gradescope,
    read_json,
)
from grader.batch.course.gradebook import extend, finals
from grader.batch.course.intake import Form, folder_name, read_form
from grader.batch.course.late import cutoff
from grader.batch.course.lms import canvas_rows, moodle_rows, to_csv
from grader.batch.course.options import COURSE, Settings, save, settings
from grader.batch.course.repos import Checkout, fetch
from grader.results.atomic import write_atomic
from grader.results.report import Report, RunInfo, max_points

CLONE_JOBS = 4


class JobLike(Protocol):
    """grader.batch.Job: the student's name, the folder graded, the student's output folder."""

    @property
    def name(self) -> str: ...
    @property
    def path(self) -> Path: ...
    @property
    def out(self) -> Path: ...


J = TypeVar("J", bound=JobLike)


class CourseRun:
    def __init__(self, args: argparse.Namespace, out: Path) -> None:
        self.out, self.args = out, args
        self.settings: Settings = settings(args, out)
        self.form: Form | None = read_form(self.settings.repos) if self.settings.repos else None
        self.audit = audit.record(
            int(args.seed or 0), str(args.engine), loopback_allowed(), merged=bool(args.merge)
        )
        self.plans: dict[str, live.Plan] = {}
        self.run_id = ""
        save(out, self.settings)

    # -- start ------------------------------------------------------------------------------
    def stamp(self, run: RunInfo, previous: RunInfo | None) -> None:
        """Fill the run's audit fields; refuse a resume under another seed or audit key."""
        run.grader_commit = self.audit.grader_commit
        run.engine_version = self.audit.engine_version
        run.seed_fingerprint = self.audit.seed_fingerprint
        if (
            self.args.resume
            and previous is not None
            and previous.seed_fingerprint not in ("", run.seed_fingerprint)
        ):
            raise ValueError(
                "this output folder was graded with another seed (or audit key): "
                "a resume must use the same; grade into a new --out instead"
            )
        self.run_id = run.run_id
        line = {**dataclasses.asdict(run), **self.audit.to_json()}
        with (self.out / "audit.jsonl").open("a", encoding="utf-8") as f:
            f.write(json.dumps(line) + "\n")

    def everyone(self) -> list[Path]:
        """With --repos: every student of the form, as their checkout folder (sorted)."""
        assert self.form is not None
        return [self.out / "checkouts" / s.folder for s in self.form.submissions]

    # -- intake -----------------------------------------------------------------------------
    def intake(self, jobs: Sequence[J], log: Callable[[str], None]) -> list[J]:
        """The jobs to grade: cloned (with --repos) and live-checked (with --live)."""
        ready = list(jobs)
        if self.form is not None:
            for problem in self.form.problems:
                log(f"form: {problem}")
            with concurrent.futures.ThreadPoolExecutor(max_workers=CLONE_JOBS) as pool:
                checked = list(pool.map(self._clone, ready))
            ready = [
                dataclasses.replace(job, path=path)  # type: ignore[type-var]
                for job, path in zip(ready, checked, strict=True)
                if path is not None
            ]
            for job in jobs:
                reason = read_json(job.out / INTAKE).get("reason")
                if reason:
                    log(f"{job.name}: no submission: {reason}")
        if self.settings.live:
            self.plans = live.plan_all(
                {j.name: j.path for j in ready}, allow_loopback=loopback_allowed()
            )
        return ready

    def _clone(self, job: JobLike) -> Path | None:
        assert self.form is not None and self.settings.deadline is not None
        sub = next(s for s in self.form.submissions if s.folder == job.name)
        record, dest = job.out / INTAKE, self.out / "checkouts" / job.name
        known = read_json(record)
        if known.get("path") and not known.get("reason") and Path(known["path"]).is_dir():
            return Path(known["path"])  # a resume grades the same commit again
        if dest.exists():
            shutil.rmtree(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        extension = self.settings.extensions.get(job.name, timedelta(0))
        until = cutoff(self.settings.deadline, self.settings.late, extension)
        got: Checkout = fetch(
            sub.url,
            sub.commit,
            sub.subdir,
            until,
            dest,
            self.settings.limits,
            allow_loopback=loopback_allowed(),
        )
        write_atomic(
            record,
            json.dumps(
                {
                    "student": sub.student,
                    "url": got.url,
                    "commit": got.commit,
                    "committed_at": got.committed_at.isoformat() if got.committed_at else "",
                    "submitted_at": sub.submitted_at.isoformat() if sub.submitted_at else "",
                    "folder": sub.subdir,
                    "path": str(got.path or ""),
                    "reason": got.reason,
                },
                indent=2,
            )
            + "\n",
        )
        return got.path

    # -- grading ----------------------------------------------------------------------------
    def command(self, job: JobLike, argv: list[str]) -> list[str]:
        plan = self.plans.get(job.name)
        return live.command(plan, argv) if plan is not None else argv

    def graded(self, job: JobLike, report: Report) -> Report:
        plan = self.plans.get(job.name)
        if plan is not None and plan.refusal:
            report = live.refuse(report, plan.refusal)
        stamp = {"run_id": self.run_id, "spec": report.spec, **self.audit.to_json()}
        write_atomic(job.out / STAMP, json.dumps(stamp, indent=2) + "\n")
        return report

    # -- finish -----------------------------------------------------------------------------
    def students(self, reports: Mapping[str, Report]) -> dict[str, Adjusted]:
        """Every student with a report or an intake record, after overrides and lateness."""
        names = set(reports) | {p.parent.name for p in (self.out / "students").glob(f"*/{INTAKE}")}
        s = self.settings
        found = {}
        for name in sorted(names):
            mine = [o for o in s.overrides if folder_name(o.student) == name]
            intake = read_json(self.out / "students" / name / INTAKE)
            extension = s.extensions.get(name, timedelta(0))
            found[name] = adjust(
                reports.get(name), mine, intake, s.deadline, s.late, extension, s.late_clock
            )
        return found

    @property
    def repos(self) -> bool:
        """Graded from repositories (this run's --repos, or the records of an earlier run)."""
        return self.form is not None or any((self.out / "students").glob(f"*/{INTAKE}"))

    def roster_rows(self, roster: Any) -> Any:
        """With --repos and no --roster: the form (or, after a merge, the intake records) is
        the roster, so that a student without a submission still has a row."""
        if roster is not None or not self.repos:
            return roster
        from grader.batch.gradebook import Roster

        if self.form is not None:
            ids = {s.folder: s.student for s in self.form.submissions}
        else:
            ids = {
                p.parent.name: str(read_json(p).get("student") or p.parent.name)
                for p in (self.out / "students").glob(f"*/{INTAKE}")
            }
        return Roster([], {f: {"folder": f, "student_id": i} for f, i in sorted(ids.items())})

    def merged(self, shards: Sequence[Path]) -> None:
        """After `--merge`: the shards' settings (when OUT has none) and their students who had
        no submission (an intake record with a reason, no report), then the settings again."""
        for shard in shards:
            if not (self.out / COURSE).is_file() and (shard / COURSE).is_file():
                write_atomic(self.out / COURSE, (shard / COURSE).read_text())
            for record in sorted((shard / "students").glob(f"*/{INTAKE}")):
                target = self.out / "students" / record.parent.name
                if read_json(record).get("reason") and not (target / "report.json").is_file():
                    write_atomic(target / INTAKE, record.read_text())
        self.settings = settings(self.args, self.out)

    def gradebook(self, reports: Mapping[str, Report]) -> Callable[..., Any] | None:
        """The extension of the batch's gradebook rows (header, rows) -> (header, rows), or
        None when no course option changes the gradebook (its layout stays the batch's)."""
        s = self.settings
        if not (self.repos or s.late or s.overrides or s.per_check):
            return None
        students = self.students(reports)

        def more(header: Sequence[str], rows: Sequence[Sequence[str]]) -> Any:
            return extend(
                header,
                rows,
                students,
                reports,
                s.per_check,
                self.repos,
                s.late is not None,
            )

        return more

    def finish(self, reports: Mapping[str, Report], roster: Any) -> list[str]:
        """Feedback and results with the course's layers, the LMS files; the report's lines."""
        students = self.students(reports)
        for name, a in students.items():
            folder = self.out / "students" / name
            if a.report is not None and (a.changed or a.problems):
                write_atomic(folder / "feedback.md", feedback(name, a))
                write_atomic(folder / "results.json", json.dumps(gradescope(a), indent=2) + "\n")
        grades = finals(students)
        for lms in self.settings.lms:
            rows = (
                canvas_rows(roster.rows, grades, self.settings.assignment, _max(reports))
                if lms == "canvas"
                else moodle_rows(roster.rows, grades, self.settings.assignment)
            )
            write_atomic(self.out / f"{lms}.csv", to_csv(rows))
        return report_sections.lines(
            self.out, reports, students, self.settings, self.form, self.audit
        )


def _max(reports: Mapping[str, Report]) -> float:
    return max_points(reports.values())[0]
