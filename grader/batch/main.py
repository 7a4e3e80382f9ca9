"""`grade batch`: grade a whole cohort, one folder per student in, a gradebook, feedback and a
cohort report out.

    uv run --group grader grade batch SUBMISSIONS_DIR --spec credit --jobs 2 --out grading-out
        [--seed-file FILE] [--shard i/n] [--resume] [--roster roster.csv] [options of `grade`]
    uv run --group grader grade batch --merge OUT_1 OUT_2 ... --out grading-out  (after shards)

Each student is graded by a `python -m grader.cli` child of its own (`runner.py`). An
interrupted batch records nothing for the students it was grading: `--resume` grades them.
Shards (`--shard 1/4` … `4/4`, one per CI job) only have to copy their `students/` folders
together (`--merge`). Finally OUT/gradebook.csv and the cohort report (OUT/report.md + PNG
charts) are rebuilt from every `report.json`.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import secrets
import signal
import time
from collections.abc import Sequence
from dataclasses import asdict
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

from grader import intake, options, preflight
from grader.batch import cohort
from grader.batch.course import options as course_options
from grader.batch.course.run import CourseRun
from grader.batch.gradebook import Roster, write_gradebook
from grader.batch.runner import (
    REPORT,
    RUN,
    STUDENT_TIMEOUT,
    Job,
    NotRecorded,
    Runner,
    collect,
    merge,
    parse_shard,
    read_run,
    refused,
    shard_of,
)
from grader.exitcodes import INTERRUPTED, REFUSED, USAGE
from grader.results.atomic import write_atomic
from grader.results.render import clean_name
from grader.results.report import RunInfo


def finish(
    out: Path,
    console: Console,
    run: RunInfo | None,
    roster: Roster | None,
    course: CourseRun | None = None,
) -> None:
    """Rebuild the gradebook and the cohort report from what is under OUT/students."""
    reports = collect(out)
    extra: list[str] = []
    if course is not None:  # overrides, late days, LMS files, the report's course sections
        roster = course.roster_rows(roster)
        extra = course.finish(reports, roster)
    extend = course.gradebook(reports) if course is not None else None
    gradebook = write_gradebook(out, reports, run.stages if run else [], roster, extend)
    report = cohort.write_report(out, reports, run, extra)
    console.print(f"gradebook: {gradebook}  ({len(reports)} students)", markup=False)
    console.print(f"cohort report: {report}", markup=False)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="grade batch",
        description="Grade every student folder of SUBMISSIONS_DIR in parallel.",
    )
    parser.add_argument(
        "submissions", nargs="?", type=Path, help="one folder or one .zip per student"
    )
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="students at once")
    options.add_arguments(parser, "batch", defaults={"spec_name": "credit"})
    parser.add_argument("--shard", type=parse_shard, help="i/n: grade only shard i of n")
    parser.add_argument(
        "--resume", action="store_true", help="skip students that already have results"
    )
    parser.add_argument(
        "--roster",
        type=Path,
        help="CSV with folder, student_id (and e.g. login, email) columns: the gradebook's ids",
    )
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
    course_options.add_arguments(parser)
    return parser


def new_run(grading: options.Options, resume: bool, previous: RunInfo | None) -> RunInfo:
    """This run's description; a resumed run keeps its id and date."""
    run = RunInfo(
        run_id=f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}",
        date=f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        spec=grading.spec_name,
        stage="all" if grading.stage == 7 else str(grading.stage),
        only=",".join(map(str, sorted(grading.only))) if grading.only else None,
        engine=grading.engine,
        seeded=grading.seed != 0,
    )
    if resume and previous is not None:
        run.run_id, run.date = previous.run_id, previous.date
    return run


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console = Console(stderr=True, soft_wrap=True)
    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    grading = options.from_values(Path("."), vars(args))
    args.seed_from_argv = bool(args.seed)  # given as --seed N, not --seed-file
    args.seed = grading.seed  # from --seed or --seed-file: the audit's fingerprint
    try:
        roster = Roster.read(args.roster) if args.roster else None
        course = CourseRun(args, out)
    except (OSError, ValueError, KeyError) as e:
        console.print(f"grade batch: {e}", markup=False, style="red")
        return USAGE

    if args.merge:
        copied = merge([p.resolve() for p in args.merge], out)
        course.merged([p.resolve() for p in args.merge])  # no-submission records, settings
        console.print(f"merged {copied} students into {out}", markup=False)
        finish(out, console, read_run(out), roster, course)
        return 0

    problem, warning = _refusal(args, grading)
    if problem:
        console.print(problem, style="red", markup=False)
        return REFUSED if problem.startswith("grade batch: refused") else USAGE
    if warning:
        console.print(warning, style="bold red", markup=False)
    try:
        everyone = _everyone(args, course, console)
    except intake.IntakeProblem as e:
        console.print(f"grade batch: {e}", style="red", markup=False)
        return USAGE
    done, todo = _plan(args, everyone, out, grading.spec_name, console)
    run = new_run(grading, args.resume, read_run(out))
    try:
        course.stamp(run, read_run(out))  # the audit record; a resume keeps the seed
    except ValueError as e:
        console.print(f"grade batch: {e}", markup=False, style="red")
        return USAGE
    todo = course.intake(todo, lambda line: console.print(line, markup=False, highlight=False))
    write_atomic(out / RUN, json.dumps(asdict(run), indent=2) + "\n")
    runner = Runner(grading, args.timeout, course)
    started = time.monotonic()
    left = grade_all(runner, todo, (len(done) + len(todo), len(done)), args.jobs, console)
    if left is None:
        console.print(
            "interrupted: finished students are saved, the others are not graded; "
            "run the same command with --resume to go on",
            style="yellow",
        )
        return INTERRUPTED
    seconds = time.monotonic() - started
    console.print(f"graded {len(todo) - left} students in {seconds:.1f} s", markup=False)
    finish(out, console, run, roster, course)
    if left:
        console.print(f"{left} students were interrupted: --resume grades them", style="yellow")
        return INTERRUPTED
    return 0


def _plan(
    args: argparse.Namespace,
    everyone: list[intake.Student],
    out: Path,
    spec: str,
    console: Console,
) -> tuple[list[Job], list[Job]]:
    """(the students of this shard already graded (--resume), those left to grade, their zips
    unpacked), said in one line."""
    mine = shard_of(everyone, args.shard)
    jobs = [Job(s.name, s.path, out / "students" / s.name, s.archive) for s in mine]
    done = [j for j in jobs if args.resume and (j.out / REPORT).is_file()]
    todo = [j for j in jobs if j not in done]
    todo = [j for j in todo if prepared(j, out, spec, console)]
    shard_note = f", shard {args.shard[0]}/{args.shard[1]}" if args.shard else ""
    console.print(
        f"{len(everyone)} submissions{shard_note}: {len(jobs)} to grade here, "
        f"{len(done)} already graded, {len(todo)} left; {args.jobs} at a time",
        markup=False,
    )
    return done, todo


def _everyone(
    args: argparse.Namespace, course: CourseRun, console: Console
) -> list[intake.Student]:
    """Every student of the cohort: the checkouts of --repos (cloned later, in course.intake),
    or one folder or .zip each in SUBMISSIONS_DIR (`intake.IntakeProblem` if unreadable)."""
    if args.repos:
        return [intake.Student(p.name, p) for p in course.everyone()]
    found = intake.cohort(args.submissions.resolve())
    if found.ignored:
        shown = ", ".join(clean_name(n) for n in found.ignored[:5])
        console.print(f"not uploads, not graded: {shown}", markup=False)
    return found.students


def _refusal(args: argparse.Namespace, grading: options.Options) -> tuple[str, str]:
    """(why this batch may not start: usage errors, a cohort unprotected; "" if it may,
    a warning to show first)."""
    problems = grading.problems()
    if args.repos is None and (args.submissions is None or not args.submissions.is_dir()):
        problems.append(
            "grade batch needs SUBMISSIONS_DIR (one folder or .zip per student) or --repos"
        )
    if args.jobs < 1:
        problems.append("--jobs must be at least 1")
    if problems:
        return "\n".join(problems), ""
    verdict = preflight.check(grading, cohort=True, seed_in_argv=bool(args.seed_from_argv))
    if verdict.refusal:
        return f"grade batch: refused: {verdict.refusal}", ""
    return "", verdict.warning or ""


def prepared(job: Job, out: Path, spec: str, console: Console) -> bool:
    """Unpack a student's zip for grading (OUT/uploads/NAME); a zip that cannot be unpacked
    safely is recorded as refused, with the reason, and not graded."""
    if not job.archive:
        return True
    try:
        job.path, job.notes = intake.prepare(
            intake.Student(job.name, job.path, True), out / "uploads"
        )
    except intake.Refused as e:
        refused(job, spec, f"your upload {job.path.name} was not unpacked: {e}")
        console.print(f"{clean_name(job.name)}: upload refused ({e})", markup=False)
        return False
    return True


def grade_all(
    runner: Runner, todo: list[Job], counts: tuple[int, int], jobs: int, console: Console
) -> int | None:
    """Grade `todo`, `jobs` at a time, with a progress bar; how many students were
    interrupted, or None if the whole batch was (Ctrl-C, SIGTERM)."""
    total, done = counts
    previous = signal.getsignal(signal.SIGTERM)

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
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
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=jobs)
    left = 0
    try:
        with progress:
            task = progress.add_task("grading", total=total, completed=done)
            futures = {pool.submit(runner.grade, job): job for job in todo}
            for future in concurrent.futures.as_completed(futures):
                name = clean_name(futures[future].name)
                try:
                    report, seconds = future.result()
                except NotRecorded:
                    left += 1
                    progress.console.print(f"{name}: interrupted, not recorded", markup=False)
                    continue
                line = f"{name}: {report.score:g} / {report.max_score:g}  ({seconds:.0f} s)"
                progress.console.print(line, markup=False, highlight=False)
                progress.advance(task)
    except KeyboardInterrupt:
        runner.stop_all()
        pool.shutdown(wait=True, cancel_futures=True)
        return None
    finally:
        signal.signal(signal.SIGTERM, previous)
    pool.shutdown(wait=True)
    return left


if __name__ == "__main__":
    raise SystemExit(main())
