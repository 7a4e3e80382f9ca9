"""`grade PATH [options]`: grade one submission, print a per-check summary and the total,
optionally write Gradescope's results.json (`--json`) and the grader's own report (`--report`).

PATH may be an upload that holds the submission in a folder (grader/uploads.py). `grade batch
…` grades a cohort (grader/batch/). Exit codes: grader/exitcodes.py.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from grader import api, exitcodes, options, uploads
from grader.results import render
from grader.results.atomic import write_atomic
from grader.specs import dataset_variables


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="grade",
        description="Grade one submission against the stage contracts "
        "(`grade batch --help` for a whole cohort).",
    )
    p.add_argument("path", type=Path, help="the submission folder (or an upload holding it)")
    options.add_arguments(p, "cli")
    p.add_argument("--json", type=Path, dest="json_file", help="write Gradescope results.json")
    p.add_argument(
        "--report",
        type=Path,
        dest="report_file",
        help="write the full report (the grader's own JSON, with the seed)",
    )
    p.add_argument("--quiet", action="store_true", help="print only the total")
    # `grade batch` hands each child its options here (JSON), never on the command line
    p.add_argument("--options-stdin", action="store_true", help=argparse.SUPPRESS)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "batch":
        from grader.batch.main import main as batch  # matplotlib and rich: only for a cohort

        return batch(argv[1:])
    if argv and argv[0] in ("setup", "doctor"):
        from grader import doctor, setup

        return (setup.main if argv[0] == "setup" else doctor.main)(argv[1:])
    p = parser()
    args = p.parse_args(argv)
    if not args.path.is_dir():
        p.error(f"{args.path} is not a folder")
    located = uploads.locate(args.path)
    if args.options_stdin:
        given = options.Options.from_json(json.load(sys.stdin))
        grading = dataclasses.replace(given, submission=located.root, url=args.url or given.url)
    else:
        grading = options.from_values(located.root, vars(args))
    for problem in grading.problems():
        p.error(problem)
    try:
        report = api.grade(grading, seed_in_argv=bool(args.seed) and not args.options_stdin)
    except api.Refused as e:
        print(f"grade: refused: {e}", file=sys.stderr)
        return exitcodes.REFUSED
    except api.Interrupted:
        print("grade: interrupted, nothing written", file=sys.stderr)
        return exitcodes.INTERRUPTED
    report.root, report.notes = located.relative, [*located.notes, *report.notes]
    print(f"Total: {report.score:g}/{report.max_score:g}" if args.quiet else render.summary(report))
    if args.report_file:
        write_atomic(args.report_file, json.dumps(report.to_json(), indent=2) + "\n")
    if args.json_file:
        redact = render.Redactor(report.submission, dataset_variables())
        results = render.gradescope(report, redact)
        write_atomic(args.json_file, json.dumps(results, indent=2) + "\n")
    return exitcodes.FAILED if report.failed else exitcodes.OK


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except KeyboardInterrupt:  # between the grading and the writing
        print("grade: interrupted, nothing written", file=sys.stderr)
        raise SystemExit(exitcodes.INTERRUPTED) from None
