"""Grading throughput: seconds for one submission, then a cohort graded with `grade batch --jobs`.

Run:  uv run python bench/grading.py [--students 100] [--jobs 2]
Each student is a copy of solutions/ (the homework's reference, full marks) without its trained
models, graded on every stage without a container engine (--engine none: stage 6 checks the
Dockerfile statically; stage 7 checks fly.toml without --url). Needs $CREDIT_DATA (default
../shared/data/…).

With the engine, against another checkout's grader, in one run (alternating):
    git worktree add /tmp/before <commit> && (cd /tmp/before && uv sync --all-groups)
    uv run python bench/grading.py --engine podman --students 0 --compare /tmp/before
    uv run python bench/grading.py --engine podman --students 0 --compare /tmp/before --new-deps
`--new-deps` gives each submission's Dockerfile one more ENV line before its dependency
install: steps no earlier build has built (a first grading of that lock on the machine).
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
import uuid
from pathlib import Path
from typing import Any

from bench.harness import ROOT, workspace

GRADE = [sys.executable, "-m", "grader.cli"]
OPTIONS = ["--spec", "credit", "--stage", "all"]


def environment() -> dict[str, str]:
    default = ROOT.parent / "shared" / "data" / "AER_credit_card_data.csv"
    data = Path(os.environ.get("CREDIT_DATA") or default)
    if not data.is_file():
        sys.exit(f"credit CSV not found at {data}: set CREDIT_DATA to it")
    return {**os.environ, "CREDIT_DATA": str(data)}


def submission(dest: Path, new_deps: bool = False) -> Path:
    ignore = shutil.ignore_patterns("*.bin", ".venv", "__pycache__", ".server.log")
    shutil.copytree(ROOT / "solutions", dest, ignore=ignore)
    (dest / "train.py").write_text((dest / "train.py").read_text() + f"# {uuid.uuid4()}\n")
    if new_deps:
        dockerfile = dest / "Dockerfile"
        text = dockerfile.read_text().replace(
            "\nWORKDIR /app\n", f"\nENV NEW_DEPS={uuid.uuid4().hex}\nWORKDIR /app\n", 1
        )
        dockerfile.write_text(text)
    return dest


def timed(cmd: list[str], env: dict[str, str]) -> float:
    start = time.monotonic()
    # exit code 1 = not full marks: the scores are read from the results instead
    subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, cwd=ROOT)
    return time.monotonic() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=100, help="0: no batch")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3, help="runs of the single submission")
    parser.add_argument("--engine", default="none", help="the grader's --engine (default none)")
    parser.add_argument("--compare", type=Path, help="another checkout whose grader to time too")
    parser.add_argument("--new-deps", action="store_true", help="never-built dependency steps")
    args = parser.parse_args()
    env = environment()
    options = [*OPTIONS, "--engine", args.engine]
    graders = {"this tree": [*GRADE]}
    if args.compare:
        graders[str(args.compare)] = ["uv", "run", "--directory", str(args.compare), "grade"]
        env.pop("VIRTUAL_ENV", None)  # each checkout runs its own environment

    with workspace() as tmp:
        one: dict[str, list[float]] = {name: [] for name in graders}
        for run in range(args.repeat):
            for name, grade in graders.items():
                folder = submission(tmp / f"single-{run}-{len(one[name])}-{name[-6:]}",
                                    args.new_deps)  # fmt: skip
                result = tmp / f"{folder.name}.json"
                cmd = [*grade, str(folder), *options, "--json", str(result)]
                one[name].append(timed(cmd, env))
                results = json.loads(result.read_text())
                score = f"{results['score']:g}/{maximum(results):g}"
                print(f"  {name}: one submission {one[name][-1]:.1f} s, score {score}",
                      file=sys.stderr)  # fmt: skip

        batch = 0.0
        scores = []
        if args.students:
            cohort = tmp / "cohort"
            for i in range(args.students):
                submission(cohort / f"student-{i:03d}")
            out = tmp / "out"
            cmd = [*GRADE, "batch", str(cohort), *options, "--jobs", str(args.jobs), "--out",
                   str(out)]  # fmt: skip
            batch = timed(cmd, env)
            found = sorted(out.glob("students/*/results.json"))
            scores = [json.loads(f.read_text()) for f in found]

    mine = statistics.median(one["this tree"])
    print(f"| grading (stages 1–7, engine {args.engine}) | seconds |")
    print("|---|---:|")
    print(f"| one submission, median of {args.repeat} | {mine:.1f} |")
    if args.compare:
        theirs = statistics.median(one[str(args.compare)])
        print(f"| the same with {args.compare}'s grader, median of {args.repeat} | {theirs:.1f} |")
        print(f"| ratio (this tree / {args.compare}) | {mine / theirs:.2f}× |")
    if args.students:
        full = sum(r["score"] == maximum(r) for r in scores)
        print(f"| {args.students} submissions, `--jobs {args.jobs}` | {batch:.0f} |")
        print(f"| per submission in the batch | {batch / args.students:.1f} |")
        print(f"\n{full} of {len(scores)} graded submissions in the batch got full marks")


def maximum(results: dict[str, Any]) -> float:
    """The submission's maximum: in extra_data (Gradescope's format), or at the top level in
    the results.json of an older grader (--compare)."""
    return float(results.get("extra_data", {}).get("max_score", results.get("max_score", 0)))


if __name__ == "__main__":
    main()
