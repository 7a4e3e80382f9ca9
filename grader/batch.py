"""Grade a whole cohort: one folder per student in, a gradebook, feedback and a report out.

    uv run --group grader grade batch SUBMISSIONS_DIR --spec credit --jobs 2 --out grading-out
        [--seed SEED] [--shard i/n] [--resume] [--roster roster.csv] [any option of `grade`]
    uv run --group grader grade batch --merge OUT_1 OUT_2 ... --out grading-out
        (after a sharded run)

Each student is graded by its own `python -m grader.cli` child (which sandboxes the student's
code and finds the submission inside a nested upload). OUT/students/<name>/ receives
`feedback.md` and `results.json` (for the student: no seed, no paths of this machine) and then
`report.json` (the grader's report, which marks the student as finished), each written to a
temporary file and renamed into place. An interrupted batch records nothing for the students
it was grading: `--resume` grades them. Shards (`--shard 1/4` … `4/4`, one per CI job) only
have to copy their `students/` folders together (`--merge`). Finally OUT/gradebook.csv and the
cohort report (OUT/report.md + PNG charts) are rebuilt from every `report.json`.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import csv
import io
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from grader import cohort, options
from grader.cli import INTERRUPTED
from grader.report import STAGE_NAMES, Report, RunInfo, clean_name, max_points, write_atomic

REPORT, RESULTS, FEEDBACK = "report.json", "results.json", "feedback.md"
GRADEBOOK, RUN = "gradebook.csv", "batch.json"
# A student whose grading takes longer than this (the grader's own per-check limits should
# always end it sooner) gets a zero with an explanation instead of blocking the batch.
STUDENT_TIMEOUT = 1800.0


# -- small helpers ----------------------------------------------------------------------------
def parse_shard(text: str) -> tuple[int, int]:
    """'2/4' -> (2, 4); shards are numbered from 1."""
    match = re.fullmatch(r"(\d+)/(\d+)", text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"--shard wants i/n, like 1/4 (got {text!r})")
    i, n = int(match[1]), int(match[2])
    if not 1 <= i <= n:
        raise argparse.ArgumentTypeError(f"--shard {text}: i must be between 1 and n")
    return i, n


def students(submissions: Path) -> list[Path]:
    """The student folders, sorted by name (hidden folders and plain files are not students)."""
    return sorted(
        (p for p in submissions.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))),
        key=lambda p: p.name,
    )


def shard_of(names: Sequence[Path], shard: tuple[int, int] | None) -> list[Path]:
    """Round-robin over the sorted names: every shard gets a similar mix of students."""
    if shard is None:
        return list(names)
    i, n = shard
    return [p for k, p in enumerate(names) if k % n == i - 1]


def spreadsheet_cell(text: str) -> str:
    """A CSV cell no spreadsheet reads as a formula (a folder named `=HYPERLINK(...)`)."""
    text = clean_name(text)
    return "'" + text if text.startswith(("=", "+", "-", "@", "\t", "\r")) else text


# -- grading one student ----------------------------------------------------------------------
@dataclass(frozen=True)
class Job:
    name: str
    path: Path
    out: Path  # OUT/students/<name>


class Interrupted(Exception):
    """This student's grading was stopped from outside: nothing is recorded for them."""


def save(job: Job, report: Report) -> None:
    """The student's files; report.json last: it marks a finished student."""
    write_atomic(job.out / FEEDBACK, report.feedback(job.name))
    write_atomic(job.out / RESULTS, json.dumps(report.gradescope(), indent=2) + "\n")
    write_atomic(job.out / REPORT, json.dumps(report.to_json(with_seed=False), indent=2) + "\n")


class Runner:
    """Runs grader children, and stops them all when the batch is interrupted."""

    def __init__(self, forwarded: list[str], spec: str, seed: int, timeout: float) -> None:
        self.forwarded, self.spec, self.seed, self.timeout = forwarded, spec, seed, timeout
        self._children: set[subprocess.Popen[str]] = set()
        self._lock = threading.Lock()
        self.stopping = False

    def command(self, job: Job, report_file: Path) -> list[str]:
        return [sys.executable, "-m", "grader.cli", str(job.path), *self.forwarded,
                "--quiet", "--report", str(report_file)]  # fmt: skip

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
                    raise Interrupted
                proc = subprocess.Popen(self.command(job, report_file), stdout=log_f,
                                        stderr=subprocess.STDOUT, text=True)  # fmt: skip
                self._children.add(proc)
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
                raise Interrupted
            if code in (0, 1) and report_file.is_file():
                report = Report.from_json(json.loads(report_file.read_text()))
            else:
                tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
                if self.seed:  # the grader's own output, shown to the student: never the seed
                    tail = re.sub(rf"(?<!\d){self.seed}(?!\d)", "<seed>", tail)
                why = (f"the grader was stopped after {seconds:.0f} s (--timeout)" if timed_out
                       else f"the grader exited with code {code} and wrote no report")  # fmt: skip
                report = Report.failure(str(job.path), self.spec, f"{why}:\n{tail}", seconds)
        if self.stopping:
            raise Interrupted
        save(job, report)
        return report, seconds

    def stop_all(self) -> None:
        with self._lock:
            self.stopping = True
            for proc in self._children:
                if proc.poll() is None:
                    proc.terminate()


# -- the gradebook ----------------------------------------------------------------------------
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


@dataclass(frozen=True)
class Roster:
    """roster.csv: a `folder` column (the student's folder name), `student_id`, and any other
    columns (login, email, ...) that the gradebook carries over."""

    columns: list[str]  # the other columns, in the file's order
    rows: dict[str, dict[str, str]]  # by folder

    @classmethod
    def read(cls, path: Path) -> Roster:
        with path.open(encoding="utf-8-sig", newline="") as f:
            reader = csv.DictReader(f)
            fields = [name.strip() for name in reader.fieldnames or []]
            if "folder" not in fields or "student_id" not in fields:
                raise ValueError(f"{path}: the roster needs the columns folder and student_id "
                                 f"(it has: {', '.join(fields) or 'none'})")  # fmt: skip
            rows = {}
            for row in reader:
                row = {k.strip(): (v or "").strip() for k, v in row.items() if k}
                rows[row["folder"]] = row
        others = [c for c in fields if c not in ("folder", "student_id")]
        return cls(others, rows)


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
            if roster and folder not in roster.rows:
                status += " (not in the roster)"
        row = [known.get("student_id", ""), folder, *(known.get(c, "") for c in extra)]
        row += [f"{scores.get(s, 0.0):g}" for s in stages]
        row += [f"{total:g}", f"{total_max:g}", status]
        rows.append([spreadsheet_cell(cell) for cell in row])
    return header, rows


def write_gradebook(
    out: Path, reports: Mapping[str, Report], stages: Sequence[int], roster: Roster | None
) -> Path:
    """OUT/gradebook.csv: UTF-8 with a BOM (Excel reads names right), CRLF as RFC 4180 says."""
    header, rows = gradebook_rows(reports, stages, roster)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    path = out / GRADEBOOK
    write_atomic(path, buffer.getvalue(), bom=True)
    return path


def read_run(out: Path) -> RunInfo | None:
    path = out / RUN
    if not path.is_file():
        return None
    return RunInfo(**json.loads(path.read_text()))


def finish(out: Path, console: Console, run: RunInfo | None, roster: Roster | None) -> None:
    """Rebuild the gradebook and the cohort report from what is under OUT/students."""
    reports = collect(out)
    gradebook = write_gradebook(out, reports, run.stages if run else [], roster)
    report = cohort.write_report(out, reports, run)
    console.print(f"gradebook: {gradebook}  ({len(reports)} students)", markup=False)
    console.print(f"cohort report: {report}", markup=False)


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
            for name in (FEEDBACK, RESULTS, REPORT):  # report.json last, as when grading
                if (folder / name).is_file():
                    write_atomic(target / name, (folder / name).read_text())
            copied += 1
    return copied


# -- the command ------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="grade batch",
        description="Grade every student folder of SUBMISSIONS_DIR in parallel.",
    )
    parser.add_argument("submissions", nargs="?", type=Path, help="one folder per student")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="students at once")
    options.add_arguments(parser, "batch", defaults={"spec": "credit"})
    parser.add_argument("--shard", type=parse_shard, help="i/n: grade only shard i of n")
    parser.add_argument(
        "--resume", action="store_true", help="skip students that already have results"
    )
    parser.add_argument("--roster", type=Path,
                        help="CSV with folder, student_id (and e.g. login, email) columns: "
                        "the gradebook's ids")  # fmt: skip
    parser.add_argument(
        "--merge",
        nargs="+",
        type=Path,
        metavar="SHARD_OUT",
        help="combine the output folders of sharded runs into --out, then report",
    )
    parser.add_argument(
        "--timeout", type=float, default=STUDENT_TIMEOUT, help="seconds per student at most"
    )
    return parser


def new_run(args: argparse.Namespace, previous: RunInfo | None) -> RunInfo:
    """This run's description; a resumed run keeps its id and date."""
    run = RunInfo(
        run_id=f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}",
        date=f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        spec=args.spec, stage=args.stage, only=args.only, engine=args.engine,
        seeded=args.seed != 0,
    )  # fmt: skip
    if args.resume and previous is not None:
        run.run_id, run.date = previous.run_id, previous.date
    return run


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console = Console(stderr=True, soft_wrap=True)
    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    try:
        roster = Roster.read(args.roster) if args.roster else None
    except (OSError, ValueError, KeyError) as e:
        console.print(f"grade batch: {e}", markup=False, style="red")
        return 2

    if args.merge:
        copied = merge([p.resolve() for p in args.merge], out)
        console.print(f"merged {copied} students into {out}", markup=False)
        finish(out, console, read_run(out), roster)
        return 0

    if args.submissions is None or not args.submissions.is_dir():
        console.print("grade batch needs SUBMISSIONS_DIR (one folder per student)", style="red")
        return 2
    if args.jobs < 1:
        console.print("--jobs must be at least 1", style="red")
        return 2
    if args.docker and args.engine == "none":
        console.print("--docker contradicts --engine none", style="red")
        return 2

    everyone = students(args.submissions.resolve())
    mine = shard_of(everyone, args.shard)
    jobs = [Job(p.name, p, out / "students" / p.name) for p in mine]
    done = [j for j in jobs if args.resume and (j.out / REPORT).is_file()]
    todo = [j for j in jobs if j not in done]
    shard_note = f", shard {args.shard[0]}/{args.shard[1]}" if args.shard else ""
    console.print(
        f"{len(everyone)} submissions{shard_note}: {len(jobs)} to grade here, "
        f"{len(done)} already graded, {len(todo)} left; {args.jobs} at a time",
        markup=False,
    )
    run = new_run(args, read_run(out))
    write_atomic(out / RUN, json.dumps(asdict(run), indent=2) + "\n")

    runner = Runner(options.forward(vars(args), "batch"), args.spec, args.seed, args.timeout)
    previous = signal.getsignal(signal.SIGTERM)

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    started = time.monotonic()
    progress = Progress(
        SpinnerColumn(),
        TextColumn("[bold]grading"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
    )
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs)
    left = 0
    try:
        with progress:
            task = progress.add_task("grading", total=len(jobs), completed=len(done))
            futures = {pool.submit(runner.grade, job): job for job in todo}
            for future in concurrent.futures.as_completed(futures):
                name = clean_name(futures[future].name)
                try:
                    report, seconds = future.result()
                except Interrupted:
                    left += 1
                    progress.console.print(f"{name}: interrupted, not recorded", markup=False)
                    continue
                line = f"{name}: {report.score:g} / {report.max_score:g}  ({seconds:.0f} s)"
                progress.console.print(line, markup=False, highlight=False)
                progress.advance(task)
    except KeyboardInterrupt:
        runner.stop_all()
        pool.shutdown(wait=True, cancel_futures=True)
        console.print("interrupted: finished students are saved, the others are not graded; "
                      "run the same command with --resume to go on", style="yellow")  # fmt: skip
        return INTERRUPTED
    finally:
        signal.signal(signal.SIGTERM, previous)
    pool.shutdown(wait=True)
    console.print(f"graded {len(todo) - left} students in {time.monotonic() - started:.1f} s",
                  markup=False)  # fmt: skip
    finish(out, console, run, roster)
    if left:
        console.print(f"{left} students were interrupted: --resume grades them", style="yellow")
        return INTERRUPTED
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
