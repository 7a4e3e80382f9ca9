"""A student's grade after the course's layers: overrides, then the late penalty.

The grader's record (report.json) is never changed; `Adjusted` is computed from it, the
overrides file and the student's intake record at the end of every run, resume and merge, and
feeds the gradebook, the LMS files, the student's feedback.md and results.json.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from grader.batch.course.late import Lateness, LatePolicy, lateness
from grader.batch.course.overrides import Applied, Override, apply
from grader.batch.runner import redactor
from grader.results import render
from grader.results.render import clean_name
from grader.results.report import Report

INTAKE, STAMP = "intake.json", "audit.json"


def read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


@dataclass
class Adjusted:
    report: Report | None
    scores: dict[str, float] = field(default_factory=dict)  # per check, after overrides
    applied: list[Applied] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    late: Lateness | None = None
    intake: dict[str, Any] = field(default_factory=dict)

    @property
    def raw(self) -> float:
        return round(sum(self.scores.values()), 2)

    @property
    def penalty(self) -> float:
        return self.late.penalty(self.raw) if self.late else 0.0

    @property
    def final(self) -> float:
        return round(self.raw - self.penalty, 2)

    def stage_scores(self) -> dict[int, float]:
        stages: dict[int, float] = {}
        for c in self.report.checks if self.report else []:
            stages[c.stage] = stages.get(c.stage, 0.0) + self.scores.get(c.id, 0.0)
        return stages

    @property
    def changed(self) -> bool:
        return bool(self.applied or self.penalty or self.intake)


def submitted_time(intake: dict[str, Any], clock: str) -> datetime | None:
    """When the work counts as handed in: the commit time, or the form's timestamp."""
    value = intake.get("submitted_at" if clock == "form" else "committed_at")
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None


def adjust(
    report: Report | None,
    overrides: list[Override],
    intake: dict[str, Any],
    deadline: datetime | None,
    policy: LatePolicy | None,
    extension: timedelta,
    clock: str = "commit",
) -> Adjusted:
    """This student's overrides (those of their folder) and lateness, applied to the report."""
    if report is None:
        return Adjusted(None, intake=intake)
    scores, applied, problems = apply(report, overrides)
    late = None
    when = submitted_time(intake, clock)
    if policy is not None and deadline is not None and when is not None:
        late = lateness(when, deadline, policy, extension)
    return Adjusted(report, scores, applied, problems, late, intake)


def notes(a: Adjusted) -> list[str]:
    """What the student's feedback says about the layers (Markdown lines)."""
    lines = []
    if a.intake.get("url"):
        when = a.intake.get("committed_at", "")[:16].replace("T", " ")
        lines.append(
            f"Graded: {clean_name(a.intake['url'])} at commit "
            f"`{str(a.intake.get('commit', ''))[:12]}` (committed {when} UTC)."
        )
    for x in a.applied:
        lines.append(
            f"Changed by your instructor: {x.override.check} {x.title}: "
            f"{x.before:g} → {x.override.points:g} of {x.out_of:g} points. "
            f"Reason: {clean_name(x.override.reason)}"
        )
    if a.late and a.late.days_late:
        lines.append(
            f"Handed in {a.late.days_late} day(s) late: {a.late.penalty_percent:g} % "
            f"off, {a.penalty:g} points."
        )
    return lines


def feedback(name: str, a: Adjusted) -> str:
    """feedback.md with the score after the layers and what changed it, under the total."""
    assert a.report is not None
    text = render.feedback(a.report, name, redactor(a.report))
    score = f"**Score: {a.report.score:g} / {a.report.max_score:g}**"
    told = notes(a)
    if not told:
        return text
    shown = f"**Score: {a.final:g} / {a.report.max_score:g}**"
    if a.final != a.report.score:
        shown += f" (graded {a.report.score:g}; see below)"
    return text.replace(score, "\n".join([shown, "", *(f"- {n}" for n in told)]), 1)


def gradescope(a: Adjusted) -> dict[str, Any]:
    """results.json with overridden checks' scores and the final total."""
    assert a.report is not None
    data = render.gradescope(a.report, redactor(a.report))
    reasons = {x.override.check: x for x in a.applied}
    for test in data["tests"]:
        x = reasons.get(test["number"])
        if x is not None:
            test["score"] = x.override.points
            test["output"] = (
                f"Changed by your instructor to {x.override.points:g} points: "
                f"{clean_name(x.override.reason)}\n\n{test['output']}"
            )
    data["score"] = a.final
    told = notes(a)
    if told:
        data["output"] = "\n".join([*told, data["output"]])
    return data
