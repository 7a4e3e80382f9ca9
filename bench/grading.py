"""Grading throughput: seconds for one submission, then a cohort graded with `grade batch --jobs`.

Run:  uv run python bench/grading.py [--students 100] [--jobs 2]
Each student is a copy of solutions/ (the homework's reference, full marks) without its trained
models, graded on every stage without a container engine (--engine none: stage 6 checks the
Dockerfile statically; stage 7 checks fly.toml without --url). Needs $CREDIT_DATA (default
../shared/data/…).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.harness import ROOT, workspace

GRADE = [sys.executable, "-m", "grader.cli"]
OPTIONS = ["--spec", "credit", "--stage", "all", "--engine", "none"]


def environment() -> dict[str, str]:
    default = ROOT.parent / "shared" / "data" / "AER_credit_card_data.csv"
    data = Path(os.environ.get("CREDIT_DATA") or default)
    if not data.is_file():
        sys.exit(f"credit CSV not found at {data}: set CREDIT_DATA to it")
    return {**os.environ, "CREDIT_DATA": str(data)}


def submission(dest: Path) -> Path:
    ignore = shutil.ignore_patterns("*.bin", ".venv", "__pycache__", ".server.log")
    shutil.copytree(ROOT / "solutions", dest, ignore=ignore)
    return dest


def timed(cmd: list[str], env: dict[str, str]) -> float:
    start = time.monotonic()
    # exit code 1 = not full marks: the scores are read from the results instead
    subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, cwd=ROOT)
    return time.monotonic() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3, help="runs of the single submission")
    args = parser.parse_args()
    env = environment()

    with workspace() as tmp:
        one = []
        for run in range(args.repeat):
            folder = submission(tmp / f"single-{run}")
            result = tmp / f"single-{run}.json"
            one.append(timed([*GRADE, str(folder), *OPTIONS, "--json", str(result)], env))
            results = json.loads(result.read_text())
            score = f"{results['score']:g}/{results['max_score']:g}"
            print(f"  one submission: {one[-1]:.1f} s, score {score}", file=sys.stderr)

        cohort = tmp / "cohort"
        for i in range(args.students):
            submission(cohort / f"student-{i:03d}")
        out = tmp / "out"
        batch = timed(
            [*GRADE, "batch", str(cohort), *OPTIONS, "--jobs", str(args.jobs), "--out", str(out)],
            env,
        )
        scores = [json.loads(f.read_text()) for f in sorted(out.glob("students/*/results.json"))]
        full = sum(r["score"] == r["max_score"] for r in scores)

    print("| grading (stages 1–7, no container engine) | seconds |")
    print("|---|---:|")
    print(f"| one submission, median of {args.repeat} | {statistics.median(one):.1f} |")
    print(f"| {args.students} submissions, `--jobs {args.jobs}` | {batch:.0f} |")
    print(f"| per submission in the batch | {batch / args.students:.1f} |")
    print(f"\n{full} of {len(scores)} graded submissions in the batch got full marks")


if __name__ == "__main__":
    main()
