"""grader/options.py: the options, once, and their flags."""

from __future__ import annotations

import json
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


def test_options_round_trip_through_json_and_argv() -> None:
    """What `grade batch` hands each student's grader (JSON on stdin) and what it forwards on
    a command line come back as the same options; defaults are left off the command line."""
    given = options.Options(
        submission=Path("/cohort/alice"),
        spec_name="credit",
        stage=5,
        only=frozenset({2, 5}),
        seed=42,
        engine="none",
        start_seconds=12.5,
        no_sandbox=True,
    )
    assert options.Options.from_json(json.loads(json.dumps(given.to_json()))) == given
    assert options.Options.from_json({}) == options.DEFAULTS
    assert options.to_argv(options.DEFAULTS, "cli") == []
    argv = options.to_argv(given, "cli")
    assert argv[argv.index("--only") + 1] == "2,5" and "--no-sandbox" in argv
    from grader.cli import parser

    parsed = options.from_values(given.submission, vars(parser().parse_args(["x", *argv])))
    assert parsed == given
    assert options.Options(engine="none", require_engine=True).problems() == [
        "--docker contradicts --engine none"
    ]
