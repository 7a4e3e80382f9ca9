"""Late days: a grace period, then a penalty per started day, up to a cap; extensions per student.

    --late grace=15m,per-day=10,cap=50[,max-days=5]
    --extensions extensions.csv        (student,days   or   student,deadline)

`per-day` and `cap` are percentages of the raw score. A submission later than the deadline
(+ its extension) + grace loses `per-day` % for every started day, never more than `cap` %.
With `max-days`, commits later than that many days after the deadline are not graded at all
(the last commit before that is); without it, the window closes where the cap is reached.
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from grader.batch.course.intake import folder_name, parse_time

DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd]?)")
UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class LatePolicy:
    grace: timedelta = timedelta(0)
    per_day: float = 0.0  # % of the raw score per started day late
    cap: float = 100.0  # % at most
    max_days: int | None = None

    @property
    def window(self) -> timedelta:
        """How long after the (extended) deadline commits are still graded."""
        if self.max_days is not None:
            days = self.max_days
        else:
            days = math.ceil(self.cap / self.per_day) if self.per_day > 0 else 0
        return self.grace + timedelta(days=days)

    def describe(self) -> str:
        return (
            f"grace {self.grace}, then {self.per_day:g} % per started day, at most "
            f"{self.cap:g} %; commits up to {self.window} after the deadline are graded"
        )


def parse_duration(text: str) -> timedelta:
    match = DURATION.fullmatch(text.strip().lower())
    if not match:
        raise ValueError(f"{text!r} is not a duration like 30m, 2h or 1d")
    return timedelta(seconds=float(match[1]) * UNITS[match[2]])


def parse_policy(text: str) -> LatePolicy:
    """`grace=15m,per-day=10,cap=50,max-days=5` (every part optional but per-day)."""
    parts: dict[str, str] = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        key = key.strip().lower().replace("_", "-")
        if not sep or key not in ("grace", "per-day", "cap", "max-days") or key in parts:
            raise ValueError(
                f"--late takes grace=15m,per-day=10,cap=50[,max-days=5] (got {text!r})"
            )
        parts[key] = value.strip()
    if "per-day" not in parts:
        raise ValueError("--late needs per-day=PERCENT (e.g. per-day=10)")
    try:
        per_day, cap = (
            float(parts["per-day"].rstrip("%")),
            float(parts.get("cap", "100").rstrip("%")),
        )
        max_days = int(parts["max-days"]) if "max-days" in parts else None
    except ValueError:
        raise ValueError(f"--late: per-day, cap and max-days are numbers (got {text!r})") from None
    if not (0 <= per_day <= 100 and 0 <= cap <= 100) or (max_days is not None and max_days < 0):
        raise ValueError("--late: per-day and cap are percentages (0-100), max-days >= 0")
    return LatePolicy(parse_duration(parts.get("grace", "0")), per_day, cap, max_days)


def read_extensions(path: Path, deadline: datetime) -> dict[str, timedelta]:
    """{student folder: extra time}: columns `student` and `days` (may be fractional) or
    `deadline` (the student's own, ISO 8601 with a zone). Bad rows stop the run."""
    extensions: dict[str, timedelta] = {}
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        fields = {(h or "").strip().lower(): h for h in reader.fieldnames or []}
        if "student" not in fields or not ({"days", "deadline"} & set(fields)):
            raise ValueError(
                f"{path}: the extensions need the columns student and days "
                "(or student and deadline)"
            )
        for row in reader:
            student = (row.get(fields["student"]) or "").strip()
            days = (row.get(fields.get("days", ""), "") or "").strip()
            until = (row.get(fields.get("deadline", ""), "") or "").strip()
            try:
                extra = timedelta(days=float(days)) if days else parse_time(until) - deadline
            except ValueError as e:
                raise ValueError(f"{path} line {reader.line_num}: {e}") from None
            if not student or extra < timedelta(0):
                raise ValueError(
                    f"{path} line {reader.line_num}: a student and a time that "
                    "extends the deadline are needed"
                )
            if folder_name(student) in extensions:
                raise ValueError(f"{path} line {reader.line_num}: {student} has two extensions")
            extensions[folder_name(student)] = extra
    return extensions


@dataclass(frozen=True)
class Lateness:
    days_late: int
    penalty_percent: float

    def penalty(self, raw: float) -> float:
        return round(raw * self.penalty_percent / 100, 2)


def lateness(
    submitted: datetime, deadline: datetime, policy: LatePolicy, extension: timedelta
) -> Lateness:
    """Days late (started days past deadline + extension + grace) and the penalty in %."""
    over = submitted - (deadline + extension + policy.grace)
    if over <= timedelta(0):
        return Lateness(0, 0.0)
    days = math.ceil(over / timedelta(days=1))
    return Lateness(days, min(policy.cap, days * policy.per_day))


def cutoff(deadline: datetime, policy: LatePolicy | None, extension: timedelta) -> datetime:
    """The last commit time that is graded for this student."""
    return deadline + extension + (policy.window if policy else timedelta(0))
