"""`grade PATH [options]`: grade one submission, print a per-check summary and the total,
optionally write Gradescope's results.json (`--json`) and the grader's own report (`--report`).

PATH may be an upload that holds the submission in a folder (grader/uploads.py), or a .zip
(unpacked safely first: grader/intake.py). `grade batch …` grades a cohort (grader/batch/);
`grade result REPORT CHECK…` tells from a `--report` whether some checks passed (GitHub
Classroom's steps). Exit codes: grader/exitcodes.py.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from grader import api, exitcodes, intake, options, uploads
from grader.results import render
from grader.results.atomic import write_atomic
from grader.results.report import PASSED, Report
from grader.specs import dataset_variables


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="grade",
        description="Grade one submission against the stage contracts "
        "(`grade batch --help` for a whole cohort).",
    )
    p.add_argument(
        "path", type=Path, help="the submission folder (or an upload holding it, or a .zip)"
    )
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
    # `grade batch --live`: the deployment's host resolves to the addresses it checked, only
    p.add_argument("--pin-host", metavar="HOST=ADDR[,ADDR]", help=argparse.SUPPRESS)
    return p


@contextlib.contextmanager
def upload_folder(path: Path, p: argparse.ArgumentParser) -> Iterator[tuple[Path, list[str]]]:
    """The folder of an upload (a .zip is unpacked into a temporary one), and notes."""
    if path.is_dir():
        yield path, []
        return
    if not (path.is_file() and path.name.lower().endswith(".zip")):
        p.error(f"{path} is not a folder or a .zip")
    with tempfile.TemporaryDirectory(prefix="grade-upload-") as tmp:
        try:
            notes = intake.unpack(path, Path(tmp) / "upload")
        except intake.Refused as e:
            p.error(f"{path} was not unpacked: {e}")
        yield Path(tmp) / "upload", notes


def result_main(argv: Sequence[str]) -> int:
    """`grade result REPORT CHECK…`: exit 0 if every named check passed in the report that
    `grade --report REPORT` wrote (a check skipped, failed or not graded fails)."""
    p = argparse.ArgumentParser(
        prog="grade result",
        description="Exit 0 if every named check passed in a report written by --report.",
    )
    p.add_argument("report", type=Path, help="the file `grade --report` wrote")
    p.add_argument("checks", nargs="+", help="check ids, like 1.1 1.50")
    args = p.parse_args(argv)
    try:
        report = Report.from_json(json.loads(args.report.read_text()))
    except (OSError, ValueError, KeyError, TypeError) as e:
        print(f"grade result: no readable report in {args.report}: {e}", file=sys.stderr)
        return exitcodes.FAILED
    by_id = {c.id: c for c in report.checks}
    ok = True
    for check_id in args.checks:
        c = by_id.get(check_id)
        if c is None:
            print(f"  ----  {check_id}: not graded in this report")
            ok = False
            continue
        print(f"  {c.status.upper():6}  {c.score:g}/{c.points:g}  {render.clean_name(c.name)}")
        if c.status != PASSED:
            ok = False
            print("\n".join(f"           {line}" for line in render.clean(c.output).splitlines()))
    return exitcodes.OK if ok else exitcodes.FAILED


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "batch":
        from grader.batch.main import main as batch  # matplotlib and rich: only for a cohort

        return batch(argv[1:])
    if argv and argv[0] in ("setup", "doctor"):
        from grader import doctor, setup

        return (setup.main if argv[0] == "setup" else doctor.main)(argv[1:])
    if argv and argv[0] == "result":
        return result_main(argv[1:])
    p = parser()
    args = p.parse_args(argv)
    if args.pin_host:
        from grader.batch.course.pinned import pin

        host, _, addresses = args.pin_host.partition("=")
        pin(host, [a for a in addresses.split(",") if a])
    with upload_folder(args.path, p) as (folder, unpacked):
        return grade_upload(p, args, folder, unpacked)


def grade_upload(
    p: argparse.ArgumentParser, args: argparse.Namespace, folder: Path, unpacked: list[str]
) -> int:
    """Grade the upload in `folder`; print and write what the options ask for."""
    located = uploads.locate(folder)
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
    report.root, report.notes = located.relative, [*unpacked, *located.notes, *report.notes]
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
