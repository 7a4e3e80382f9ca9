"""The results model of one graded submission, and what is made from it.

`Report` (a list of `CheckResult`) is written by the contracts' pytest run and read back by the
CLI; batch grading stores it per student and builds the gradebook and the cohort report from it.
The views for students (the summary, Gradescope's results.json, feedback.md) never show the
seed of the hidden checks, control characters or paths of the grading machine.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"
STAGE_NAMES = {
    1: "train", 2: "pipeline", 3: "fastapi", 4: "pydantic", 5: "uv", 6: "docker", 7: "flyio",
}  # fmt: skip
CHECK_ID = re.compile(r"(\d+)\.(\d+)")
GRADER_ROOT = Path(__file__).resolve().parent.parent
# What students never need to see: the path of an interpreter ("python" says it all), and the
# grader's own working folders (the sandbox's /tmp/submission is what their code sees: kept).
_INTERPRETER = re.compile(r"/\S*/bin/python[\d.]*(?=[\s`'\"]|$)")
_GRADER_TMP = re.compile(r"(?:/var)?/tmp/(?!submission\b)[^\s'\"`:;,)]+")


def parse_check_id(check_id: str) -> tuple[int, int]:
    """'3.50' -> (3, 50): the stage, then the check's number in it (the one parser of ids)."""
    match = CHECK_ID.fullmatch(check_id.strip())
    if not match:
        raise ValueError(f"a check id is STAGE.N, like 3.2 (got {check_id!r})")
    return int(match[1]), int(match[2])


# ANSI escape sequences (CSI, OSC, two-byte ESC x), then any other control character but \n, \t.
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-_]?")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


def clean(text: str) -> str:
    """Text safe to print or render: no terminal escapes, no control or bidi characters."""
    text = text.replace("\r\n", "\n")
    return _CONTROL.sub("", _ESCAPES.sub("", text))


def clean_name(text: str) -> str:
    """A name (a student's folder) on one line: cleaned, whitespace runs made one space."""
    return " ".join(clean(text).split()) or "?"


@dataclass
class CheckResult:
    id: str
    title: str
    stage: int
    points: float
    status: str  # passed | failed | skipped
    output: str = ""
    hidden: bool = False

    @property
    def name(self) -> str:
        return f"{self.id} {self.title}"

    @property
    def score(self) -> float:
        return self.points if self.status == PASSED else 0.0

    @property
    def max_score(self) -> float:
        """Skipped checks (nothing to grade them with here) count for neither side."""
        return 0.0 if self.status == SKIPPED else self.points

    def sort_key(self) -> tuple[int, int]:
        return parse_check_id(self.id)


@dataclass
class Report:
    submission: str  # the graded folder on the grading machine (never shown to students)
    spec: str
    stage: int
    seed: int
    isolation: str
    checks: list[CheckResult] = field(default_factory=list)
    seconds: float = 0.0
    root: str = "."  # the folder graded, relative to the upload (a zip may hold one folder)
    notes: list[str] = field(default_factory=list)  # about the upload, for student and teacher
    error: str = ""  # set when the grader itself could not grade the submission

    @classmethod
    def failure(cls, submission: str, spec: str, message: str, seconds: float = 0.0) -> Report:
        """The report of a submission the grader could not grade (no check ran)."""
        return cls(submission, spec, 7, 0, "", seconds=seconds, error=message)

    @property
    def score(self) -> float:
        return sum(c.score for c in self.checks)

    @property
    def max_score(self) -> float:
        return sum(c.max_score for c in self.checks)

    @property
    def failed(self) -> list[CheckResult]:
        return [c for c in self.checks if c.status == FAILED]

    @property
    def sorted_checks(self) -> list[CheckResult]:
        return sorted(self.checks, key=CheckResult.sort_key)

    def stage_scores(self) -> dict[int, tuple[float, float]]:
        """(score, max_score) per stage, over the checks graded here."""
        scores: dict[int, tuple[float, float]] = {}
        for c in self.checks:
            got, out_of = scores.get(c.stage, (0.0, 0.0))
            scores[c.stage] = (got + c.score, out_of + c.max_score)
        return scores

    @property
    def seed_text(self) -> str:
        """How the summary names the seed: only the public one, 0, is ever shown."""
        return "public seed 0" if self.seed == 0 else "the instructor's seed"

    # -- storage ------------------------------------------------------------------------------
    def to_json(self, with_seed: bool = True) -> dict[str, Any]:
        """Everything (the pytest run writes it, the CLI and batch read it back)."""
        data = asdict(self)
        data["checks"] = [asdict(c) for c in self.sorted_checks]
        if not with_seed:
            data["seed"] = None
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Report:
        data = dict(data)
        checks = [CheckResult(**c) for c in data.pop("checks")]
        data["seed"] = data.get("seed") or 0
        return cls(**data, checks=checks)

    # -- what students see --------------------------------------------------------------------
    def for_student(self, text: str) -> str:
        """Text without control characters or the grading machine's paths."""
        text = _INTERPRETER.sub("python", clean(text))
        for path, label in _redactions(self.submission):
            text = text.replace(path, label)
        return _GRADER_TMP.sub("<tmp>", text)

    def gradescope(self) -> dict[str, Any]:
        """Gradescope's results.json; extra_data carries the stage for per-stage scores."""
        tests = []
        for c in self.sorted_checks:
            tests.append(
                {
                    "name": clean(c.title),
                    "number": c.id,
                    "score": c.score,
                    "max_score": c.max_score,
                    "status": c.status,
                    "output": self.for_student(c.output),
                    "visibility": "after_published" if c.hidden else "visible",
                    "tags": [f"stage-{c.stage}"] + (["hidden"] if c.hidden else []),
                    "extra_data": {
                        "stage": c.stage,
                        "check": c.id,
                        "points": c.points,
                        "hidden": c.hidden,
                    },
                }
            )
        output = [f"{self.spec} spec, stages 1-{self.stage}. Isolation: {self.isolation}"]
        output += [self.for_student(n) for n in self.notes]
        if self.error:
            output.append(f"The grader could not grade this submission: {self.error}")
        return {
            "score": self.score,
            "max_score": self.max_score,
            "output": self.for_student("\n".join(output)),
            "visibility": "visible",
            "tests": tests,
            "extra_data": {
                "spec": self.spec,
                "stage": self.stage,
                "isolation": self.isolation,
                "submission": self.root,
                "seconds": round(self.seconds, 1),
            },
        }

    def write_gradescope(self, path: Path) -> None:
        path.write_text(json.dumps(self.gradescope(), indent=2) + "\n", encoding="utf-8")

    def feedback(self, name: str) -> str:
        """Markdown for one student: total, a table per stage, what to fix under each failure."""
        lines = [f"# Feedback for {clean_name(name)}", ""]
        lines += [f"**Score: {self.score:g} / {self.max_score:g}**", ""]
        lines += [self.for_student(n) for n in self.notes]
        if self.error:
            lines += ["The grader could not grade this submission:", ""]
            lines += [*_fenced(self.for_student(self.error)), ""]
        if self.notes:
            lines.append("")
        scores = self.stage_scores()
        if scores:
            lines += ["| stage | score |", "|---|---|"]
            for stage in sorted(scores):
                got, out_of = scores[stage]
                lines.append(f"| {stage} {STAGE_NAMES.get(stage, '')} | {got:g} / {out_of:g} |")
            lines.append("")
        failed = [c for c in self.sorted_checks if c.status == FAILED]
        skipped = [c for c in self.sorted_checks if c.status == SKIPPED]
        if failed:
            lines += ["## What to fix", ""]
        for c in failed:
            lines.append(f"### {c.id} {clean_name(c.title)} (0 / {c.points:g})")
            if c.hidden:
                lines += ["", "A hidden check: its details are shown once grades are published."]
                lines.append("")
                continue
            lines += ["", *_fenced(self.for_student(c.output).strip() or "(no output)"), ""]
        if not failed and not self.error:
            lines += ["Every graded check passed.", ""]
        if skipped:
            lines += ["## Not graded here (not counted)", ""]
            lines += [f"- {c.id} {clean_name(c.title)}: "
                      f"{clean_name(self.for_student(c.output))}" for c in skipped]  # fmt: skip
            lines.append("")
        return "\n".join(lines)

    def summary(self) -> str:
        """Plain-text summary: one line per check, what to fix under each failure, the total."""
        lines = [f"Grading {clean(self.submission)} ({self.spec} spec, stages 1-{self.stage}, "
                 f"{self.seed_text})", f"isolation: {self.isolation}"]  # fmt: skip
        lines += [clean(n) for n in self.notes]
        if self.error:
            lines.append(f"the grader could not grade this submission: {clean(self.error)}")
        lines.append("")
        mark = {PASSED: "PASS", FAILED: "FAIL", SKIPPED: "SKIP"}
        for c in self.sorted_checks:
            points = f"{c.score:g}/{c.points:g}"
            hidden = " (hidden)" if c.hidden else ""
            lines.append(f"  {mark[c.status]}  {points:>7}  {clean_name(c.name)}{hidden}")
            if c.status != PASSED and c.output:
                lines += [f"           {line}" for line in clean(c.output).splitlines()]
        lines += ["", f"Total: {self.score:g}/{self.max_score:g}"]
        skipped = [c for c in self.checks if c.status == SKIPPED]
        if skipped:
            lines.append(f"{len(skipped)} check(s) skipped, not counted: see SKIP above")
        return "\n".join(lines)


def max_points(reports: Iterable[Report]) -> tuple[float, dict[int, float]]:
    """A run's maximum, the same for every student of it: the points of every check graded
    (not skipped) for at least one student; and the same per stage."""
    points: dict[str, tuple[int, float]] = {}
    for report in reports:
        for c in report.checks:
            if c.status != SKIPPED:
                points[c.id] = (c.stage, c.points)
    per_stage: dict[int, float] = {}
    for stage, value in points.values():
        per_stage[stage] = per_stage.get(stage, 0.0) + value
    return sum(per_stage.values()), per_stage


def _fenced(text: str) -> list[str]:
    """A Markdown code block that no backtick run inside the text can close early."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [f"{fence}text", text, fence]


def _redactions(submission: str) -> list[tuple[str, str]]:
    """(path, what to show instead), longest first: the grading machine's folders."""
    pairs: dict[str, str] = {}
    if submission:
        pairs[submission.rstrip("/")] = "."
        pairs[str(Path(submission).resolve())] = "."
    from grader.specs import SPECS  # the datasets' variables (CHURN_DATA, CREDIT_DATA)

    for spec in SPECS.values():
        value = os.environ.get(spec.env_var)
        if value:
            pairs[value] = f"${spec.env_var}"
    pairs[str(GRADER_ROOT)] = "<grader>"
    pairs[sys.prefix] = "<python>"
    pairs[sys.base_prefix] = "<python>"
    pairs[str(Path.home())] = "~"
    tmp = tempfile.gettempdir()
    if tmp not in ("/tmp", "/"):  # /tmp/submission is the sandbox's own, and means something
        pairs[tmp] = "<tmp>"
    return sorted(((p, label) for p, label in pairs.items() if len(p) > 1),
                  key=lambda pair: -len(pair[0]))  # fmt: skip


@dataclass
class RunInfo:
    """One `grade batch` run: what every student of it is graded with (never the seed)."""

    run_id: str  # random, not derived from the seed
    date: str  # UTC, ISO 8601
    spec: str
    stage: str = "all"
    only: str | None = None
    engine: str = "auto"
    seeded: bool = False  # graded with an instructor's seed (which is stored nowhere)
    # the run's audit (grader.course.audit): the grader's commit, the engine and its version,
    # a keyed fingerprint of the seed (never the seed)
    grader_commit: str = ""
    engine_version: str = ""
    seed_fingerprint: str = ""

    @property
    def stages(self) -> list[int]:
        last = 7 if self.stage == "all" else int(self.stage)
        only = {int(s) for s in self.only.split(",")} if self.only else None
        return [s for s in range(1, last + 1) if only is None or s in only]

    def describe(self) -> str:
        stages = f"1-{self.stages[-1]}" if not self.only else ",".join(map(str, self.stages))
        seed = "an instructor's seed" if self.seeded else "the public seed"
        return (f"Run {self.run_id}: {self.spec} spec, stages {stages}, engine {self.engine}, "
                f"{seed}; graded {self.date}.")  # fmt: skip


def write_atomic(path: Path, text: str, bom: bool = False) -> None:
    """Write text to path so that readers see either the old file or the whole new one; the
    file gets the usual permissions (the instructor's group can read it, umask permitting)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8-sig" if bom else "utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    """The process's umask, read without changing it (Linux), else 022."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    return 0o022
