"""Grading a cohort's students: one grader child per student, the OUT layout, shards, resume,
merge. OUT/students/<name>/ receives `feedback.md` and `results.json` (for the student: no seed,
no paths of this machine) and then `report.json` (the grader's report, which marks the student
as finished), each written to a temporary file and renamed into place."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from grader.exitcodes import INTERRUPTED
from grader.options import Options

if TYPE_CHECKING:
    from grader.batch.course.run import CourseRun
from grader.results import render
from grader.results.atomic import write_atomic
from grader.results.report import Report, RunInfo
from grader.specs import dataset_variables

REPORT, RESULTS, FEEDBACK = "report.json", "results.json", "feedback.md"
GRADEBOOK, RUN = "gradebook.csv", "batch.json"
# A student whose grading takes longer than this (the grader's own per-check limits should
# always end it sooner) gets a zero with an explanation instead of blocking the batch.
STUDENT_TIMEOUT = 1800.0


def redactor(report: Report) -> render.Redactor:
    """What students see of this machine in `report`'s texts: nothing."""
    return render.Redactor(report.submission, dataset_variables())


def parse_shard(text: str) -> tuple[int, int]:
    """'2/4' -> (2, 4); shards are numbered from 1."""
    match = re.fullmatch(r"(\d+)/(\d+)", text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"--shard wants i/n, like 1/4 (got {text!r})")
    i, n = int(match[1]), int(match[2])
    if not 1 <= i <= n:
        raise argparse.ArgumentTypeError(f"--shard {text}: i must be between 1 and n")
    return i, n


def shard_of[T](names: Sequence[T], shard: tuple[int, int] | None) -> list[T]:
    """Round-robin over the sorted students: every shard gets a similar mix of them."""
    if shard is None:
        return list(names)
    i, n = shard
    return [p for k, p in enumerate(names) if k % n == i - 1]


@dataclass
class Job:
    name: str
    path: Path  # the folder graded (a zip until it is unpacked: grader/intake.py)
    out: Path  # OUT/students/<name>
    archive: bool = False
    notes: list[str] = field(default_factory=list)  # about the upload (what the zip left out)


class NotRecorded(Exception):
    """This student's grading was stopped from outside: nothing is recorded for them."""


def refused(job: Job, spec: str, why: str) -> Report:
    """Record a student whose upload the grader would not unpack: no check ran, the reason."""
    job.out.mkdir(parents=True, exist_ok=True)
    report = Report.failure(str(job.path), spec, why)
    report.verdict = why
    save(job, report)
    return report


def save(job: Job, report: Report) -> None:
    """The student's files; report.json last: it marks a finished student."""
    redact = redactor(report)
    write_atomic(job.out / FEEDBACK, render.feedback(report, job.name, redact))
    gradescope = render.gradescope(report, redact)
    write_atomic(job.out / RESULTS, json.dumps(gradescope, indent=2) + "\n")
    write_atomic(job.out / REPORT, json.dumps(report.to_json(with_seed=False), indent=2) + "\n")


class Runner:
    """Runs grader children, and stops them all when the batch is interrupted."""

    def __init__(self, grading: Options, timeout: float, course: CourseRun | None = None) -> None:
        # every child refuses to grade unprotected unless the batch was told --no-sandbox
        self.options = dataclasses.replace(grading, require_sandbox=not grading.no_sandbox)
        self.spec, self.seed, self.timeout = grading.spec_name, grading.seed, timeout
        self.course = course  # --repos, --live, the audit stamp (grader.batch.course)
        self._children: set[subprocess.Popen[str]] = set()
        self._lock = threading.Lock()
        self.stopping = False

    def command(self, job: Job, report_file: Path) -> list[str]:
        """The child's command line: its options (the seed among them) come on its stdin."""
        argv = [sys.executable, "-m", "grader.cli", str(job.path), "--options-stdin", "--quiet"]
        argv += ["--report", str(report_file)]
        return self.course.command(job, argv) if self.course else argv  # --live: --url, pinned

    def grade(self, job: Job) -> tuple[Report, float]:
        job.out.mkdir(parents=True, exist_ok=True)
        for stale in job.out.glob("grade-*"):  # left by a batch that was killed
            shutil.rmtree(stale, ignore_errors=True)
        started = time.monotonic()
        timed_out = False
        with tempfile.TemporaryDirectory(prefix="grade-", dir=job.out) as tmp:
            report_file, log = Path(tmp) / REPORT, Path(tmp) / "grader.log"
            with log.open("w") as log_f, self._lock:
                if self.stopping:  # a job picked up after Ctrl-C: never started
                    raise NotRecorded
                proc = subprocess.Popen(
                    self.command(job, report_file),
                    stdin=subprocess.PIPE,
                    stdout=log_f,
                    stderr=subprocess.STDOUT,
                    text=True,
                )
                self._children.add(proc)
                assert proc.stdin is not None
                with contextlib.suppress(OSError):
                    proc.stdin.write(json.dumps(self.options.to_json()))
                    proc.stdin.close()
            try:
                proc.wait(timeout=self.timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
                proc.kill()
                proc.wait()
            finally:
                with self._lock:
                    self._children.discard(proc)
            seconds = time.monotonic() - started
            code = proc.returncode
            # Stopped by Ctrl-C / SIGTERM (the batch's or the child's own): never a grade.
            if self.stopping or (not timed_out and (code == INTERRUPTED or code < 0)):
                raise NotRecorded
            if code in (0, 1) and report_file.is_file():
                report = Report.from_json(json.loads(report_file.read_text()))
            else:
                tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
                if self.seed:  # the grader's own output, shown to the student: never the seed
                    tail = re.sub(rf"(?<!\d){self.seed}(?!\d)", "<seed>", tail)
                why = (
                    f"the grader was stopped after {seconds:.0f} s (--timeout)"
                    if timed_out
                    else f"the grader exited with code {code} and wrote no report"
                )
                report = Report.failure(str(job.path), self.spec, f"{why}:\n{tail}", seconds)
        if self.stopping:
            raise NotRecorded
        if self.course is not None:  # --live refusals, the audit stamp
            report = self.course.graded(job, report)
        report.notes = [*job.notes, *report.notes]
        save(job, report)
        return report, seconds

    def stop_all(self) -> None:
        with self._lock:
            self.stopping = True
            for proc in self._children:
                if proc.poll() is None:
                    proc.terminate()


def collect(out: Path) -> dict[str, Report]:
    """Every finished student's report under OUT/students, by folder name."""
    found: dict[str, Report] = {}
    root = out / "students"
    if not root.is_dir():
        return found
    for folder in sorted(root.iterdir()):
        path = folder / REPORT
        if path.is_file():
            found[folder.name] = Report.from_json(json.loads(path.read_text()))
    return found


def read_run(out: Path) -> RunInfo | None:
    path = out / RUN
    if not path.is_file():
        return None
    return RunInfo(**json.loads(path.read_text()))


def merge(shards: Sequence[Path], out: Path) -> int:
    """Copy finished students from shard output folders into OUT (last one wins on clashes)."""
    copied = 0
    for shard in shards:
        root = shard / "students"
        if not root.is_dir():
            raise SystemExit(f"{shard} has no students/ folder: is it a `grade batch --out`?")
        if not (out / RUN).is_file() and (shard / RUN).is_file():
            write_atomic(out / RUN, (shard / RUN).read_text())
        for folder in sorted(root.iterdir()):
            if not (folder / REPORT).is_file():
                continue  # unfinished in that shard
            target = out / "students" / folder.name
            # report.json last, as when grading; intake.json and audit.json: grader.batch.course's
            for name in ("intake.json", "audit.json", FEEDBACK, RESULTS, REPORT):
                if (folder / name).is_file():
                    write_atomic(target / name, (folder / name).read_text())
            copied += 1
    return copied
