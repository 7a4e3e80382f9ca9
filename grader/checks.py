"""The check API: a pytest marker with an id, a title and points, and helpers to fail with a
message that tells the student what to fix.

    from grader.checks import check, expect

    @check("1.2", "train.py writes model.bin", points=1)
    def test_writes_model(grading: Grading) -> None:
        expect((grading.sandbox.scratch / "model.bin").is_file(),
               "train.py ran but wrote no model.bin: save the model with pickle.dump(...)")

The id's first number is the stage (1-7); checks of stages above `--stage` are not run.
`hidden=True` marks a check built from the seed: Gradescope shows it after publication.
`needs="engine"` (a container engine) or `needs="url"` (a live deployment): what the run must
have to grade the check; without it the check is skipped, for every student of the run alike,
before it starts (a skip never depends on the submission, so every student of a run has the
same maximum).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NoReturn

import pytest

from grader.results.report import parse_check_id

MARKER = "check"
NEEDS = ("engine", "url")  # what a run may lack (then the checks that need it are skipped)


class CheckFailed(AssertionError):
    """A failed check; its message is what the student reads."""


def check(
    id: str, title: str, points: float, hidden: bool = False, needs: str | None = None
) -> pytest.MarkDecorator:
    """Mark a test function as a graded check (`needs`: one of NEEDS, or None)."""
    if needs is not None and needs not in NEEDS:
        raise ValueError(f"check {id}: needs must be one of {NEEDS}, not {needs!r}")
    return pytest.mark.check(id=id, title=title, points=points, hidden=hidden, needs=needs)


def expect(condition: object, message: str) -> None:
    """Fail the check with `message` unless `condition` holds."""
    if not condition:
        raise CheckFailed(message)


def fail(message: str) -> NoReturn:
    raise CheckFailed(message)


def skip(message: str) -> NoReturn:
    """Not gradable in this run: reported as skipped, never as passed. Only for what the run
    lacks, whatever the submission (prefer `needs=`): a skip that depends on the submission
    would give students of one run different maximums."""
    pytest.skip(message)


@dataclass(frozen=True)
class CheckInfo:
    id: str
    title: str
    points: float
    hidden: bool
    needs: str | None = None

    @property
    def stage(self) -> int:
        return parse_check_id(self.id)[0]

    @property
    def name(self) -> str:
        return f"{self.id} {self.title}"

    def sort_key(self) -> tuple[int, int]:
        return parse_check_id(self.id)


def info(item: pytest.Item) -> CheckInfo | None:
    marker = item.get_closest_marker(MARKER)
    if marker is None:
        return None
    kwargs: dict[str, Any] = dict(marker.kwargs)
    for key, value in zip(("id", "title", "points", "hidden"), marker.args, strict=False):
        kwargs[key] = value
    return CheckInfo(
        id=str(kwargs["id"]),
        title=str(kwargs["title"]),
        points=float(kwargs["points"]),
        hidden=bool(kwargs.get("hidden", False)),
        needs=kwargs.get("needs"),
    )
