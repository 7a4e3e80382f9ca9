"""The course-scale options of `grade batch`, and the settings they make (validated once).

Settings that must hold for a whole output folder are remembered in OUT/course.json: a
`--resume` or `--merge` without `--overrides` (or `--late`, `--lms`, …) applies the ones
recorded, so that manual points survive every later run; a resume with another deadline is
refused (part of the cohort would be cut at another time).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from grader.batch.course.gitrun import CLONE_MAX_MB, CLONE_SECONDS, Limits
from grader.batch.course.intake import parse_time
from grader.batch.course.late import LatePolicy, parse_policy, read_extensions
from grader.batch.course.lms import FORMATS
from grader.batch.course.overrides import Override, fingerprint, read_overrides

COURSE = "course.json"
STICKY = (
    "deadline",
    "late",
    "late_clock",
    "extensions",
    "overrides",
    "per_check",
    "lms",
    "assignment",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # One declaration per option, each with its help: long, but a list read top to bottom.
    g = parser.add_argument_group("course-scale grading (see instructors/README.md)")
    g.add_argument(
        "--repos",
        type=Path,
        metavar="CSV",
        help="the submissions form: student, repository URL (commit, folder, timestamp)",
    )
    g.add_argument(
        "--deadline",
        metavar="TIME",
        help="ISO 8601 with a zone, e.g. 2027-01-15T23:59:59Z: the last commit at or "
        "before it is graded",
    )
    g.add_argument(
        "--late", metavar="POLICY", help="late days: grace=15m,per-day=10,cap=50[,max-days=5]"
    )
    g.add_argument(
        "--late-clock",
        choices=("commit", "form"),
        help="lateness from the commit time (default) or the form's timestamp",
    )
    g.add_argument(
        "--extensions",
        type=Path,
        metavar="CSV",
        help="student,days (or student,deadline): extra time per student",
    )
    g.add_argument(
        "--overrides",
        type=Path,
        metavar="CSV",
        help="student,check,points,reason: manual points, kept across regrades",
    )
    g.add_argument(
        "--per-check", action="store_true", default=None, help="one gradebook column per check"
    )
    g.add_argument(
        "--lms",
        action="append",
        choices=FORMATS,
        help="also write OUT/canvas.csv or OUT/moodle.csv (needs --roster)",
    )
    g.add_argument(
        "--assignment",
        help="the LMS column's name (Canvas: `Title (id)` to update an existing assignment)",
    )
    g.add_argument(
        "--live",
        action="store_true",
        help="probe each student's answered fly.io URL with stage 7's checks",
    )
    g.add_argument(
        "--clone-max-mb",
        type=int,
        default=CLONE_MAX_MB,
        help=f"largest repository cloned (default {CLONE_MAX_MB} MB)",
    )
    g.add_argument(
        "--clone-seconds",
        type=float,
        default=CLONE_SECONDS,
        help=f"longest clone (default {CLONE_SECONDS:.0f} s)",
    )


@dataclass
class Settings:
    repos: Path | None = None
    deadline: datetime | None = None
    late: LatePolicy | None = None
    late_clock: str = "commit"
    extensions: dict[str, timedelta] = field(default_factory=dict)
    overrides: list[Override] = field(default_factory=list)
    overrides_file: Path | None = None
    per_check: bool = False
    lms: list[str] = field(default_factory=list)
    assignment: str = "Credit card homework"
    live: bool = False
    limits: Limits = field(default_factory=Limits)
    recorded: dict[str, Any] = field(default_factory=dict)  # as written to course.json


def _sticky(args: argparse.Namespace, previous: dict[str, Any]) -> dict[str, Any]:
    """The options of this run, the recorded ones filling in what was not given."""
    given = {k: getattr(args, k) for k in STICKY}
    for key in ("extensions", "overrides"):
        if given[key] is not None:
            given[key] = str(Path(given[key]).resolve())
    if (
        args.resume
        and previous.get("deadline")
        and given["deadline"] not in (None, previous["deadline"])
    ):
        raise ValueError(
            f"this output folder was graded with --deadline {previous['deadline']}:"
            " a resume must keep it (use a new --out to grade another deadline)"
        )
    return {k: (given[k] if given[k] is not None else previous.get(k)) for k in STICKY}


def settings(args: argparse.Namespace, out: Path) -> Settings:
    """The validated settings of this run (ValueError with the reason otherwise)."""
    path = out / COURSE
    previous = json.loads(path.read_text()) if path.is_file() else {}
    values = _sticky(args, previous)
    s = Settings(
        repos=args.repos.resolve() if getattr(args, "repos", None) else None,
        live=bool(args.live),
        per_check=bool(values["per_check"]),
        late_clock=values["late_clock"] or "commit",
        lms=sorted(set(values["lms"] or [])),
        assignment=values["assignment"] or Settings.assignment,
        limits=Limits(args.clone_max_mb * 10**6, args.clone_seconds),
    )
    if (s.repos is None) != (values["deadline"] is None) and not args.merge and not args.resume:
        raise ValueError("--repos and --deadline go together")
    if values["deadline"]:
        s.deadline = parse_time(values["deadline"])
    if values["late"]:
        if s.deadline is None:
            raise ValueError("--late needs --deadline (and --repos)")
        s.late = parse_policy(values["late"])
    if values["extensions"]:
        if s.deadline is None:
            raise ValueError("--extensions needs --deadline")
        s.extensions = read_extensions(Path(values["extensions"]), s.deadline)
    if values["overrides"]:
        s.overrides_file = Path(values["overrides"])
        if not s.overrides_file.is_file():
            raise ValueError(
                f"the overrides file {s.overrides_file} (recorded for this output "
                "folder) is missing: give --overrides FILE"
            )
        s.overrides = read_overrides(s.overrides_file)
        values["overrides_sha256"] = fingerprint(s.overrides_file)
    if s.lms and args.roster is None:
        raise ValueError("--lms needs --roster (the LMS's student ids)")
    stages = 7 in (args.only or {7}) and args.stage == 7  # --only and --stage: parsed
    if s.live and not stages:
        raise ValueError("--live grades stage 7: do not leave it out with --stage/--only")
    s.recorded = values
    return s


def save(out: Path, s: Settings) -> None:
    from grader.results.atomic import write_atomic

    write_atomic(out / COURSE, json.dumps(s.recorded, indent=2, default=str) + "\n")
