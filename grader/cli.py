"""`grade PATH [--spec churn|credit] [--stage 1..7|all] [--url URL] [--seed S] [--json FILE]`

Runs the stage contracts (pytest tests in grader/contracts) against one submission, prints a
per-check summary and the total, optionally writes Gradescope's results.json, and exits 1 when
any check failed (0 otherwise; skipped checks do not fail). `grade batch ...` is handed to
`grader.batch.main(argv)` when that module exists.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import pytest

from grader.report import Report
from grader.specs import SPECS

CONTRACTS = Path(__file__).parent / "contracts"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="grade",
        description="Grade one submission against the stage contracts "
        "(`grade batch --help` for a whole cohort).",
    )
    p.add_argument("path", type=Path, help="the submission folder")
    p.add_argument("--spec", choices=sorted(SPECS), default="churn")
    p.add_argument("--stage", default="all", help="grade stages 1..N (N in 1-7, or all)")
    p.add_argument("--url", help="also probe this live deployment (stage 7)")
    p.add_argument("--seed", type=int, default=0, help="seed of the hidden checks")
    p.add_argument("--json", type=Path, dest="json_file", help="write Gradescope results.json")
    p.add_argument(
        "--engine",
        choices=["auto", "none", "docker", "podman"],
        default="auto",
        help="container engine for stage 6's build and run (default: auto-detect)",
    )
    p.add_argument(
        "--docker",
        action="store_true",
        help="require a container engine (fail instead of skipping the build)",
    )
    p.add_argument(
        "--start-seconds",
        type=float,
        default=60.0,
        help="how long the app may take to start listening (default 60)",
    )
    p.add_argument("--only", help="grade only these stages (comma-separated, e.g. 5,6)")
    p.add_argument("--quiet", action="store_true", help="print only the total")
    return p  # fmt: skip


def grade(args: argparse.Namespace) -> Report:
    """Run the contracts in this process; return the report they wrote."""
    with tempfile.TemporaryDirectory(prefix="grade-") as tmp:
        results = Path(tmp) / "report.json"
        argv = [
            str(CONTRACTS), "-c", str(CONTRACTS / "pytest.ini"), "--rootdir", str(CONTRACTS),
            "-q", "-p", "no:cacheprovider",
            "--submission", str(args.path), "--spec", args.spec, "--stage", str(args.stage),
            "--seed", str(args.seed), "--engine", args.engine,
            "--start-seconds", str(args.start_seconds), "--grader-results", str(results),
        ]  # fmt: skip
        if args.url:
            argv += ["--url", args.url]
        if args.only:
            argv += ["--only", args.only]
        output = io.StringIO()
        with contextlib.redirect_stdout(output):
            code = pytest.main(argv)
        if not results.is_file():
            sys.stderr.write(output.getvalue()[-5000:])
            raise SystemExit(f"grade: the contracts did not run (pytest exit code {code})")
        return Report.from_json(json.loads(results.read_text()))


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "batch":
        try:
            batch = importlib.import_module("grader.batch")
        except ModuleNotFoundError:
            print("grade: batch mode is not installed (grader/batch.py)", file=sys.stderr)
            return 2
        return int(batch.main(argv[1:]))
    args = parser().parse_args(argv)
    if not args.path.is_dir():
        parser().error(f"{args.path} is not a folder")
    if args.stage != "all" and args.stage not in {str(n) for n in range(1, 8)}:
        parser().error("--stage must be 1..7 or all")
    if args.docker and args.engine == "none":
        parser().error("--docker contradicts --engine none")
    report = grade(args)
    if args.docker and any(c.status == "skipped" and c.stage == 6 for c in report.checks):
        for c in report.checks:
            if c.status == "skipped" and c.stage == 6:
                c.status, c.output = "failed", "--docker was given but " + c.output
    print(f"Total: {report.score:g}/{report.max_score:g}" if args.quiet else report.summary())
    if args.json_file:
        report.write_gradescope(args.json_file)
    return 1 if report.failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
