"""Check results, the readable summary and Gradescope's results.json."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"


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

    def sort_key(self) -> tuple[int, ...]:
        return tuple(int(p) for p in self.id.split(".") if p.isdigit())


@dataclass
class Report:
    submission: str
    spec: str
    stage: int
    seed: int
    isolation: str
    checks: list[CheckResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def score(self) -> float:
        return sum(c.score for c in self.checks)

    @property
    def max_score(self) -> float:
        return sum(c.max_score for c in self.checks)

    @property
    def failed(self) -> list[CheckResult]:
        return [c for c in self.checks if c.status == FAILED]

    def to_json(self) -> dict[str, Any]:
        """Everything, for the CLI (the pytest run writes it, the CLI reads it back)."""
        data = asdict(self)
        data["checks"] = [asdict(c) for c in sorted(self.checks, key=CheckResult.sort_key)]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Report:
        checks = [CheckResult(**c) for c in data.pop("checks")]
        return cls(**data, checks=checks)

    def gradescope(self) -> dict[str, Any]:
        """Gradescope's results.json; extra_data carries the stage for per-stage scores."""
        tests = []
        for c in sorted(self.checks, key=CheckResult.sort_key):
            tests.append(
                {
                    "name": c.name,
                    "number": c.id,
                    "score": c.score,
                    "max_score": c.max_score,
                    "status": c.status,
                    "output": c.output,
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
        return {
            "score": self.score,
            "max_score": self.max_score,
            "output": f"{self.spec} spec, stages 1-{self.stage}, seed {self.seed}. "
            f"Isolation: {self.isolation}",
            "visibility": "visible",
            "tests": tests,
            "extra_data": {
                "spec": self.spec,
                "stage": self.stage,
                "seed": self.seed,
                "isolation": self.isolation,
                "submission": self.submission,
                "seconds": round(self.seconds, 1),
            },
        }

    def write_gradescope(self, path: Path) -> None:
        path.write_text(json.dumps(self.gradescope(), indent=2) + "\n")

    def summary(self) -> str:
        """Plain-text summary: one line per check, what to fix under each failure, the total."""
        lines = [f"Grading {self.submission} ({self.spec} spec, stages 1-{self.stage}, "
                 f"seed {self.seed})", f"isolation: {self.isolation}", ""]  # fmt: skip
        mark = {PASSED: "PASS", FAILED: "FAIL", SKIPPED: "SKIP"}
        for c in sorted(self.checks, key=CheckResult.sort_key):
            points = f"{c.score:g}/{c.points:g}"
            hidden = " (hidden)" if c.hidden else ""
            lines.append(f"  {mark[c.status]}  {points:>7}  {c.name}{hidden}")
            if c.status != PASSED and c.output:
                lines += [f"           {line}" for line in c.output.splitlines()]
        lines += ["", f"Total: {self.score:g}/{self.max_score:g}"]
        skipped = [c for c in self.checks if c.status == SKIPPED]
        if skipped:
            lines.append(f"{len(skipped)} check(s) skipped, not counted: see SKIP above")
        return "\n".join(lines)
