"""The results model: `CheckResult`, `Report` (one graded submission), `RunInfo` (one batch run),
and their JSON form (grader/INTERNALS.md: "One results model")."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"
STAGE_NAMES = {
    1: "train",
    2: "pipeline",
    3: "fastapi",
    4: "pydantic",
    5: "uv",
    6: "docker",
    7: "flyio",
}
CHECK_ID = re.compile(r"(\d+)\.(\d+)")
# How a check that could not be graded because of another failure begins its output: the
# cause is charged (and explained) once, at that other check (grader/CHECKS.md).
NOT_CHECKED = "not checked because "
NOT_GRADED = "not graded: "  # the whole upload was not gradable (Report.verdict says why)


def parse_check_id(check_id: str) -> tuple[int, int]:
    """'3.50' -> (3, 50): the stage, then the check's number in it (the one parser of ids)."""
    match = CHECK_ID.fullmatch(check_id.strip())
    if not match:
        raise ValueError(f"a check id is STAGE.N, like 3.2 (got {check_id!r})")
    return int(match[1]), int(match[2])


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

    @property
    def consequence(self) -> bool:
        """A failure that follows from another one (charged there), not a cause of its own."""
        return self.status == FAILED and self.output.startswith((NOT_CHECKED, NOT_GRADED))


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
    warning: str = ""  # said first wherever the report is shown (e.g. graded without sandbox)
    # one line about the upload as a whole (empty, another assignment's work), said at the top
    verdict: str = ""
    # what the grading machine lacks and how to fix it: for whoever runs the grader (the
    # summary, the cohort report), never in what a student receives
    machine: str = ""

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
    def causes(self) -> list[CheckResult]:
        """The failed checks that are a cause of their own (not "not checked because ...")."""
        return [c for c in self.failed if not c.consequence]

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


def graded_points(reports: Iterable[Report]) -> dict[str, tuple[int, float]]:
    """{check id: (stage, points)} of every check graded (not skipped) for some student."""
    points: dict[str, tuple[int, float]] = {}
    for report in reports:
        for c in report.checks:
            if c.status != SKIPPED:
                points[c.id] = (c.stage, c.points)
    return points


def max_points(reports: Iterable[Report]) -> tuple[float, dict[int, float]]:
    """A run's maximum, the same for every student of it, and the same per stage: the points
    of every check the run grades. Whether a check is graded is decided by the run (a container
    engine, a --url), never by a submission (grader/CHECKS.md, `needs`), so this is what the
    reference solution scores in the same run; a missing or blank answer is that student's
    failure and changes nothing here."""
    per_stage: dict[int, float] = {}
    for stage, value in graded_points(reports).values():
        per_stage[stage] = per_stage.get(stage, 0.0) + value
    return sum(per_stage.values()), per_stage


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
    # the run's audit (grader.batch.course.audit): the grader's commit, the engine and its version,
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
        return (
            f"Run {self.run_id}: {self.spec} spec, stages {stages}, engine {self.engine}, "
            f"{seed}; graded {self.date}."
        )
