"""`grade PATH [--spec churn|credit] [--stage 1..7|all] [--url URL] [--seed S] [--json FILE]`

Runs the stage contracts (pytest tests in grader/contracts) against one submission, prints a
per-check summary and the total, optionally writes Gradescope's results.json, and exits 1 when
any check failed (0 otherwise; skipped checks do not fail; 130 when interrupted and 3 when the
contracts could not run: then it writes nothing). PATH may be an upload that holds the
submission in a folder: the grader finds it (grader/uploads.py). `grade batch ...` grades a
cohort (grader/batch.py).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import pytest

from grader import options, uploads
from grader.report import FAILED, SKIPPED, Report, write_atomic

CONTRACTS = Path(__file__).parent / "contracts"
INTERRUPTED = 130
BROKEN = 3  # the grader itself could not run: no grade


class Interrupted(Exception):
    """The grading was stopped (Ctrl-C, SIGTERM): no result may be recorded."""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="grade",
        description="Grade one submission against the stage contracts "
        "(`grade batch --help` for a whole cohort).",
    )
    p.add_argument("path", type=Path, help="the submission folder (or an upload holding it)")
    options.add_arguments(p, "cli")
    p.add_argument("--json", type=Path, dest="json_file", help="write Gradescope results.json")
    p.add_argument("--report", type=Path, dest="report_file",
                   help="write the full report (the grader's own JSON, with the seed)")  # fmt: skip
    p.add_argument("--quiet", action="store_true", help="print only the total")
    return p


def grade(args: argparse.Namespace, root: Path) -> Report:
    """Run the contracts in this process; return the report they wrote."""
    with tempfile.TemporaryDirectory(prefix="grade-") as tmp:
        results = Path(tmp) / "report.json"
        argv = [
            str(CONTRACTS), "-c", str(CONTRACTS / "pytest.ini"), "--rootdir", str(CONTRACTS),
            "-q", "-p", "no:cacheprovider", "--submission", str(root),
            *options.forward(vars(args), "pytest"), "--grader-results", str(results),
        ]  # fmt: skip
        output = io.StringIO()
        # Only the contracts' own conftest: no plugin the environment happens to hold (the
        # course's dev group brings schemathesis, hypothesis, anyio: 2 s of imports per grading,
        # and a plugin could change how checks run).
        autoload = os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD")
        os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
        try:
            with contextlib.redirect_stdout(output):
                code = pytest.main(argv)
        except KeyboardInterrupt:
            raise Interrupted from None
        finally:
            if autoload is None:
                os.environ.pop("PYTEST_DISABLE_PLUGIN_AUTOLOAD", None)
            else:
                os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = autoload
        if code == pytest.ExitCode.INTERRUPTED:
            raise Interrupted
        broken = code in (pytest.ExitCode.INTERNAL_ERROR, pytest.ExitCode.USAGE_ERROR)
        if broken or not results.is_file():  # never a grade from a run that did not happen
            sys.stderr.write(output.getvalue()[-5000:])
            print(f"grade: the contracts did not run (pytest exit code {code})", file=sys.stderr)
            raise SystemExit(BROKEN)
        return Report.from_json(json.loads(results.read_text()))


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "batch":
        from grader import batch  # matplotlib and rich: only for a cohort

        return batch.main(argv[1:])
    p = parser()
    args = p.parse_args(argv)
    if not args.path.is_dir():
        p.error(f"{args.path} is not a folder")
    if args.docker and args.engine == "none":
        p.error("--docker contradicts --engine none")
    located = uploads.locate(args.path)
    try:
        report = grade(args, located.root)
    except Interrupted:
        print("grade: interrupted, nothing written", file=sys.stderr)
        return INTERRUPTED
    report.root, report.notes = located.relative, [*located.notes, *report.notes]
    if args.docker:
        for c in report.checks:
            if c.status == SKIPPED and c.stage == 6:
                c.status, c.output = FAILED, "--docker was given but " + c.output
    print(f"Total: {report.score:g}/{report.max_score:g}" if args.quiet else report.summary())
    if args.report_file:
        write_atomic(args.report_file, json.dumps(report.to_json(), indent=2) + "\n")
    if args.json_file:
        write_atomic(args.json_file, json.dumps(report.gradescope(), indent=2) + "\n")
    return 1 if report.failed else 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except KeyboardInterrupt:  # between the grading and the writing
        print("grade: interrupted, nothing written", file=sys.stderr)
        raise SystemExit(INTERRUPTED) from None
