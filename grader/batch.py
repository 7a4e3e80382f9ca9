"""Grade a whole cohort: one folder per student in, a gradebook, feedback and a report out.

    uv run grade batch SUBMISSIONS_DIR --spec credit --jobs 2 --out grading-out [--seed SEED]
                       [--shard i/n] [--resume] [--stage all|1,2,3,...]
    uv run grade batch --merge OUT_1 OUT_2 ... --out grading-out      (after a sharded run)

Each student is graded by its own `python -m grader.cli` child process (which sandboxes the
student's code). Results land in OUT/students/<name>/ as `feedback.md` then `results.json`, each
written to a temporary file and renamed into place: a `results.json` that exists is complete, so
an interrupted batch resumes with `--resume` where it stopped, and shards (`--shard 1/4` … `4/4`,
one per CI job) only have to copy their `students/` folders together (`--merge`).
After grading, OUT/gradebook.csv and the cohort report (OUT/report.md + PNG charts) are rebuilt
from every `results.json` under OUT/students.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import csv
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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

STAGES = {1: "train", 2: "pipeline", 3: "fastapi", 4: "pydantic", 5: "uv", 6: "docker", 7: "flyio"}
RESULTS = "results.json"
FEEDBACK = "feedback.md"
GRADEBOOK = "gradebook.csv"
# A student whose grading takes longer than this (the grader's own per-check limits should
# always end it sooner) gets a zero with an explanation instead of blocking the batch.
STUDENT_TIMEOUT = 1800.0
STAGE_PREFIX = re.compile(r"^\s*(\d+)\.")

Results = dict[str, Any]


# -- small helpers ----------------------------------------------------------------------------
def write_atomic(path: Path, text: str) -> None:
    """Write text to path so that readers see either the old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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


def stage_of(test: dict[str, Any]) -> int | None:
    """The stage a test belongs to: its `stage` field, else the prefix of its name ("3.2 ...")."""
    extra = test.get("extra_data")
    stage = extra.get("stage") if isinstance(extra, dict) else test.get("stage")
    if isinstance(stage, int):
        return stage
    match = STAGE_PREFIX.match(str(test.get("name", "")))
    return int(match[1]) if match else None


def stage_scores(results: Results) -> dict[int, tuple[float, float]]:
    """(score, max_score) per stage number, summed over the tests of that stage."""
    scores: dict[int, tuple[float, float]] = {}
    for test in results.get("tests", []):
        stage = stage_of(test)
        if stage is None:
            continue
        got, out_of = scores.get(stage, (0.0, 0.0))
        scores[stage] = (
            got + float(test.get("score", 0) or 0),
            out_of + float(test.get("max_score", 0) or 0),
        )
    return scores


# -- grading one student ----------------------------------------------------------------------
@dataclass(frozen=True)
class Job:
    name: str
    path: Path
    out: Path  # OUT/students/<name>


@dataclass(frozen=True)
class Settings:
    """What every student is graded with (the grader CLI's options)."""

    spec: str = "credit"
    stage: str = "all"
    seed: str | None = None
    engine: str = "auto"
    only: str | None = None


def grader_command(path: Path, settings: Settings, json_file: Path) -> list[str]:
    cmd = [sys.executable, "-m", "grader.cli", str(path), "--spec", settings.spec]
    cmd += ["--stage", settings.stage, "--engine", settings.engine, "--quiet"]
    cmd += ["--json", str(json_file)]
    if settings.seed is not None:
        cmd += ["--seed", settings.seed]
    if settings.only:
        cmd += ["--only", settings.only]
    return cmd


def error_results(message: str) -> Results:
    """A zero for a student whose grading itself failed, with the reason as its only test."""
    return {
        "score": 0.0,
        "max_score": 0.0,
        "output": message,
        "tests": [
            {
                "name": "0.1 the grader could grade this submission",
                "score": 0.0,
                "max_score": 0.0,
                "status": "failed",
                "output": message,
                "visibility": "visible",
            }
        ],
    }


class Runner:
    """Runs grader children, and stops them all when the batch is interrupted."""

    def __init__(self, settings: Settings, timeout: float) -> None:
        self.settings, self.timeout = settings, timeout
        self._children: set[subprocess.Popen[str]] = set()
        self._lock = threading.Lock()
        self.stopping = False

    def grade(self, job: Job) -> tuple[Results, float]:
        job.out.mkdir(parents=True, exist_ok=True)
        for stale in job.out.glob("grade-*"):  # left by a batch that was killed
            shutil.rmtree(stale, ignore_errors=True)
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="grade-", dir=job.out) as tmp:
            json_file = Path(tmp) / RESULTS
            cmd = grader_command(job.path, self.settings, json_file)
            log = Path(tmp) / "grader.log"
            with log.open("w") as log_f:
                proc = subprocess.Popen(cmd, stdout=log_f, stderr=subprocess.STDOUT, text=True)
                with self._lock:
                    self._children.add(proc)
                try:
                    proc.wait(timeout=self.timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                finally:
                    with self._lock:
                        self._children.discard(proc)
            seconds = time.monotonic() - started
            if self.stopping:
                raise KeyboardInterrupt
            try:
                results: Results = json.loads(json_file.read_text())
            except (OSError, ValueError):
                tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
                if proc.returncode is not None and proc.returncode < 0:
                    why = f"the grader was stopped after {seconds:.0f} s"
                else:
                    why = f"the grader exited with code {proc.returncode} and wrote no results"
                results = error_results(f"{why}:\n{tail}")
        # feedback first, results last: results.json is the mark of a finished student
        write_atomic(job.out / FEEDBACK, feedback(job.name, results))
        write_atomic(job.out / RESULTS, json.dumps(results, indent=2) + "\n")
        return results, seconds

    def stop_all(self) -> None:
        self.stopping = True
        with self._lock:
            for proc in self._children:
                if proc.poll() is None:
                    proc.terminate()


# -- per-student feedback ---------------------------------------------------------------------
def feedback(name: str, results: Results) -> str:
    """Markdown for one student: total, a table per stage, the output of every failed check."""
    lines = [f"# Feedback for {name}", ""]
    score, max_score = float(results.get("score", 0)), float(results.get("max_score", 0))
    lines += [f"**Score: {score:g} / {max_score:g}**", ""]
    if results.get("output"):
        lines += [str(results["output"]).strip(), ""]
    scores = stage_scores(results)
    if scores:
        lines += ["| stage | score |", "|---|---|"]
        for stage in sorted(scores):
            got, out_of = scores[stage]
            lines.append(f"| {stage} {STAGES.get(stage, '')} | {got:g} / {out_of:g} |")
        lines.append("")
    tests = results.get("tests", [])
    failed = [t for t in tests if t.get("status") == "failed"]
    skipped = [t for t in tests if t.get("status") == "skipped"]
    if failed:
        lines += ["## What to fix", ""]
    for test in failed:
        got, out_of = float(test.get("score", 0)), float(test.get("max_score", 0))
        lines.append(f"### {test.get('name', '?')} ({got:g} / {out_of:g})")
        if test.get("visibility") in ("hidden", "after_published", "after_due_date"):
            lines += ["", "A hidden check: its details are shown once grades are published.", ""]
            continue
        output = str(test.get("output", "")).strip()
        lines += ["", "```text", output or "(no output)", "```", ""]
    if not failed:
        lines += ["Every graded check passed.", ""]
    if skipped:
        lines += ["## Not graded here (not counted)", ""]
        lines += [f"- {t.get('name', '?')}: {str(t.get('output', '')).strip()}" for t in skipped]
        lines.append("")
    return "\n".join(lines)


# -- the gradebook ----------------------------------------------------------------------------
def collect(out: Path) -> dict[str, Results]:
    """Every finished student's results under OUT/students, by name."""
    found: dict[str, Results] = {}
    root = out / "students"
    if not root.is_dir():
        return found
    for folder in sorted(root.iterdir()):
        path = folder / RESULTS
        if path.is_file():
            found[folder.name] = json.loads(path.read_text())
    return found


def gradebook_rows(all_results: dict[str, Results]) -> tuple[list[str], list[list[str]]]:
    stages = sorted({s for r in all_results.values() for s in stage_scores(r)})
    header = ["student", *(f"{s} {STAGES.get(s, '')}".strip() for s in stages)]
    header += ["total", "max"]
    rows = []
    for name in sorted(all_results):
        results = all_results[name]
        scores = stage_scores(results)
        row = [name, *(f"{scores.get(s, (0.0, 0.0))[0]:g}" for s in stages)]
        row += [f"{float(results.get('score', 0)):g}", f"{float(results.get('max_score', 0)):g}"]
        rows.append(row)
    return header, rows


def write_gradebook(out: Path, all_results: dict[str, Results]) -> Path:
    header, rows = gradebook_rows(all_results)
    path = out / GRADEBOOK
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    write_atomic(path, buffer.getvalue())
    return path


def finish(out: Path, console: Console, meta: dict[str, Any]) -> None:
    """Rebuild the gradebook and the cohort report from what is under OUT/students."""
    from grader import cohort  # matplotlib is slow to import: only when needed

    all_results = collect(out)
    gradebook = write_gradebook(out, all_results)
    report = cohort.write_report(out, all_results, title=meta.get("title"))
    console.print(f"gradebook: {gradebook}  ({len(all_results)} students)")
    console.print(f"cohort report: {report}")


def merge(shards: Sequence[Path], out: Path) -> int:
    """Copy finished students from shard output folders into OUT (last one wins on clashes)."""
    copied = 0
    for shard in shards:
        root = shard / "students"
        if not root.is_dir():
            raise SystemExit(f"{shard} has no students/ folder: is it a `grade batch --out`?")
        for folder in sorted(root.iterdir()):
            if not (folder / RESULTS).is_file():
                continue  # unfinished in that shard
            target = out / "students" / folder.name
            target.mkdir(parents=True, exist_ok=True)
            for name in (FEEDBACK, RESULTS):  # results.json last, as when grading
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
    parser.add_argument("--spec", default="credit", help="credit (the homework) or churn")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="students at once")
    parser.add_argument("--seed", help="seed of the hidden checks (keep it to yourself)")
    parser.add_argument("--stage", default="all", help="grade stages 1..N (N in 1-7, or all)")
    parser.add_argument("--only", help="grade only these stages, e.g. 1,2,3,4,5,7")
    parser.add_argument(
        "--engine",
        choices=["auto", "none", "docker", "podman"],
        default="auto",
        help="container engine for stage 6 (none: static Dockerfile checks only)",
    )
    parser.add_argument("--shard", type=parse_shard, help="i/n: grade only shard i of n")
    parser.add_argument(
        "--resume", action="store_true", help="skip students that already have results"
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console = Console(stderr=True, soft_wrap=True)
    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)

    if args.merge:
        copied = merge([p.resolve() for p in args.merge], out)
        console.print(f"merged {copied} students into {out}")
        finish(out, console, {})
        return 0

    if args.submissions is None or not args.submissions.is_dir():
        console.print("[red]grade batch needs SUBMISSIONS_DIR (one folder per student)[/red]")
        return 2
    if args.jobs < 1:
        console.print("[red]--jobs must be at least 1[/red]")
        return 2

    everyone = students(args.submissions.resolve())
    mine = shard_of(everyone, args.shard)
    jobs = [Job(p.name, p, out / "students" / p.name) for p in mine]
    done = [j for j in jobs if args.resume and (j.out / RESULTS).is_file()]
    todo = [j for j in jobs if j not in done]
    shard_note = f", shard {args.shard[0]}/{args.shard[1]}" if args.shard else ""
    console.print(
        f"{len(everyone)} submissions{shard_note}: {len(jobs)} to grade here, "
        f"{len(done)} already graded, {len(todo)} left; {args.jobs} at a time"
    )
    settings = Settings(args.spec, args.stage, args.seed, args.engine, args.only)
    meta = {
        "spec": args.spec,
        "stage": args.stage,
        "only": args.only,
        "engine": args.engine,
        "seeded": args.seed is not None,
    }
    write_atomic(out / "batch.json", json.dumps(meta, indent=2) + "\n")

    runner = Runner(settings, args.timeout)
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
    try:
        with progress:
            task = progress.add_task("grading", total=len(jobs), completed=len(done))
            futures = {pool.submit(runner.grade, job): job for job in todo}
            for future in concurrent.futures.as_completed(futures):
                job = futures[future]
                results, seconds = future.result()
                score = float(results.get("score", 0))
                max_score = float(results.get("max_score", 0))
                progress.console.print(
                    f"{job.name}: {score:g} / {max_score:g}  ({seconds:.0f} s)", highlight=False
                )
                progress.advance(task)
    except KeyboardInterrupt:
        runner.stop_all()
        pool.shutdown(wait=True, cancel_futures=True)
        console.print(
            "[yellow]interrupted: finished students are saved; "
            "run the same command with --resume to go on[/yellow]"
        )
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    pool.shutdown(wait=True)
    console.print(f"graded {len(todo)} students in {time.monotonic() - started:.1f} s")
    finish(out, console, meta)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
