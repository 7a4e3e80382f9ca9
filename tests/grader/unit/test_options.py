"""grader/options.py: the options, once, and their flags."""

from __future__ import annotations

from pathlib import Path

from grader import options
from grader.batch import main as batch


def test_grading_options_pass_through_batch() -> None:
    args = batch.build_parser().parse_args(
        ["subs", "--out", "o", "--start-seconds", "5", "--only", "3,4", "--seed", "9", "--docker"]
    )
    given = options.from_values(Path("x"), vars(args))
    forwarded = options.to_argv(given, "cli")
    # --docker is a rule the checks apply: the contracts' pytest plugin takes it too
    assert "--docker" in forwarded and "--docker" in options.to_argv(given, "pytest")
    assert forwarded[forwarded.index("--start-seconds") + 1] == "5.0"
    assert args.spec_name == "credit", "a cohort is graded with the homework's spec by default"
    from grader.cli import parser

    cli = parser().parse_args(["x", *forwarded])
    grading = options.from_values(Path("x"), vars(cli))
    assert (grading.start_seconds, grading.only, grading.seed) == (5.0, frozenset({3, 4}), 9)
    assert grading.spec.name == "credit" and grading.stage == 7
