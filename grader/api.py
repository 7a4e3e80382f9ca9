"""Grading as a Python call: `grade_one(submission, *, …) -> Report`, the one entry the CLI,
`grade batch` (through the CLI of each child), Gradescope and Classroom go through."""

from __future__ import annotations

import contextlib
import io
import os
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from grader import preflight
from grader.exitcodes import BROKEN
from grader.options import DEFAULTS, Options
from grader.results.report import Report

CONTRACTS = Path(__file__).parent / "contracts"


class Interrupted(Exception):
    """The grading was stopped (Ctrl-C, SIGTERM): no result may be recorded."""


class ContractsBroken(SystemExit):
    """The contracts could not run (a grader bug or a broken machine): no grade."""


class RunPlugin:
    """Handed to pytest: the options in, the report out (never through the command line).
    The contracts' conftest finds it by its `grader_options` attribute."""

    def __init__(self, options: Options) -> None:
        self.grader_options = options
        self.grader_report: Report | None = None


def grade_one(
    submission: Path,
    *,
    spec: str = DEFAULTS.spec_name,
    stage: int = DEFAULTS.stage,
    only: frozenset[int] | None = DEFAULTS.only,
    seed: int = DEFAULTS.seed,
    engine: str = DEFAULTS.engine,
    require_engine: bool = DEFAULTS.require_engine,
    url: str | None = DEFAULTS.url,
    start_seconds: float = DEFAULTS.start_seconds,
    require_sandbox: bool = DEFAULTS.require_sandbox,
    no_sandbox: bool = DEFAULTS.no_sandbox,
) -> Report:
    """Grade one submission folder against the stage contracts.

    Args:
        submission: the folder to grade (`uploads.locate` finds it inside an upload).
        spec: "churn" (the lessons) or "credit" (the homework).
        stage: grade stages 1..stage.
        only: grade just these stages (each <= stage).
        seed: the seed of the hidden checks (0: the public one).
        engine: "auto", "none", "docker" or "podman": stage 6's container engine.
        require_engine: fail stage 6's build checks when no engine is found.
        url: a live deployment to probe (stage 7).
        start_seconds: how long the app may take to start listening.
        require_sandbox: refuse to grade without bubblewrap (a seed implies it).
        no_sandbox: grade without bubblewrap where it cannot start (the report says so).

    Returns:
        The report: one result per check.

    Raises:
        Interrupted: the grading was stopped.
        Refused: the grading would not be protected here (the message says why).
        ContractsBroken: the contracts could not run (nothing to report).
    """
    options = replace(
        DEFAULTS,
        submission=submission,
        spec_name=spec,
        stage=stage,
        only=only,
        seed=seed,
        engine=engine,
        require_engine=require_engine,
        url=url,
        start_seconds=start_seconds,
        require_sandbox=require_sandbox,
        no_sandbox=no_sandbox,
    )
    return grade(options)


class Refused(Exception):
    """The grading may not start here (grader.preflight says why, in one line)."""


def grade(options: Options, seed_in_argv: bool = False) -> Report:
    """`grade_one` with its options in one object; refused (`Refused`) where the grading
    would not be protected (grader/preflight.py)."""
    verdict = preflight.check(options, seed_in_argv=seed_in_argv)
    if verdict.refusal:
        raise Refused(verdict.refusal)
    report = _run_contracts(options)
    report.warning = verdict.warning
    return report


def _run_contracts(options: Options) -> Report:
    plugin = RunPlugin(options)
    argv = [
        str(CONTRACTS),
        "-c",
        str(CONTRACTS / "pytest.ini"),
        "--rootdir",
        str(CONTRACTS),
        "-q",
        "-p",
        "no:cacheprovider",
    ]
    output = io.StringIO()
    # Only the contracts' own conftest: no plugin the environment happens to hold (the course's
    # dev group brings schemathesis, hypothesis, anyio: 2 s of imports per grading, and a
    # plugin could change how checks run).
    autoload = os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD")
    os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    try:
        with contextlib.redirect_stdout(output):
            code = pytest.main(argv, plugins=[plugin])
    except KeyboardInterrupt:
        raise Interrupted from None
    finally:
        if autoload is None:
            os.environ.pop("PYTEST_DISABLE_PLUGIN_AUTOLOAD", None)
        else:
            os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = autoload
    if code == pytest.ExitCode.INTERRUPTED:
        raise Interrupted
    broken = code in (pytest.ExitCode.INTERNAL_ERROR, pytest.ExitCode.USAGE_ERROR)
    if broken or plugin.grader_report is None:  # never a grade from a run that did not happen
        sys.stderr.write(output.getvalue()[-5000:])
        print(f"grade: the contracts did not run (pytest exit code {code})", file=sys.stderr)
        raise ContractsBroken(BROKEN)
    return plugin.grader_report
