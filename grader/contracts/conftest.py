"""pytest plugin of the contracts: options, the `grading` fixture, result collection.

Run directly:  uv run --group grader pytest grader/contracts --submission 04-pydantic --stage 4
(the CLI `grade` runs the same tests in-process and prints a summary instead of pytest's
output; it hands its options over as an object, never on a command line).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from grader.checks import CheckFailed, info
from grader.contracts.common import stage1_note
from grader.grading.session import Grading
from grader.options import Options, add_arguments, from_values
from grader.results.report import FAILED, NOT_GRADED, PASSED, SKIPPED, CheckResult, Report
from grader.specs import DatasetMissing
from grader.submission.files import FileProblem

RESULTS = pytest.StashKey[list[CheckResult]]()
EMPTY = "the upload is empty (no train.py, predict.py or any other file of the assignment)"
STARTED = pytest.StashKey[float]()
GRADING = pytest.StashKey[Grading]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("grader", "stage contracts")
    group.addoption(
        "--submission",
        default=os.environ.get("GRADE_SUBMISSION", "."),
        help="the folder to grade (default: $GRADE_SUBMISSION or .)",
    )
    add_arguments(group, "pytest")  # spec, stage, seed, ... (grader/options.py)
    group.addoption("--grader-results", default=None, help="write the report as JSON here")


def _run_plugin(config: pytest.Config) -> Any:
    """The object `grader.api.grade` handed to pytest (None when pytest was run directly)."""
    for plugin in config.pluginmanager.get_plugins():
        if hasattr(plugin, "grader_options"):
            return plugin
    return None


def _options(config: pytest.Config) -> Options:
    run = _run_plugin(config)
    if run is not None:
        options: Options = run.grader_options
        return options
    submission = Path(config.getoption("submission")).resolve()
    names = (
        "spec_name",
        "stage",
        "only",
        "seed",
        "engine",
        "require_engine",
        "url",
        "start_seconds",
    )
    return from_values(submission, {n: config.getoption(n) for n in names})


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "check(id, title, points, hidden=False): a graded check")
    config.stash[RESULTS] = []
    config.stash[STARTED] = time.monotonic()
    options = _options(config)
    try:  # a setup problem of the run: said once, not as a failure of every check
        options.spec.dataset_path()
    except DatasetMissing as e:
        raise pytest.UsageError(f"the grader cannot run: {e}") from None
    config.stash[GRADING] = Grading(options)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Keep the checks of the graded stages that belong to the spec (a module's `SPECS`)."""
    options = config.stash[GRADING].options
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        meta = info(item)
        if meta is None:
            raise pytest.UsageError(f"{item.nodeid} has no @check(...) marker")
        wanted = meta.stage <= options.stage and (
            options.only is None or meta.stage in options.only
        )
        specs = getattr(getattr(item, "module", None), "SPECS", None)
        applies = specs is None or options.spec_name in specs
        (keep if wanted and applies else drop).append(item)
    keep.sort(key=lambda item: info(item).sort_key())  # type: ignore[union-attr]
    if drop:
        config.hook.pytest_deselected(items=drop)
    items[:] = keep


@pytest.fixture(scope="session")
def grading(pytestconfig: pytest.Config) -> Iterator[Grading]:
    g = pytestconfig.stash[GRADING]
    if not g.submission.is_dir():
        pytest.exit(f"{g.submission} is not a folder", returncode=4)
    yield g


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Before a check's fixtures: skip it if the run lacks what it needs (the same for every
    submission of the run), and tell the `grading` which check runs (grading/causes.py)."""
    meta = info(item)
    grading = item.config.stash[GRADING]
    if meta is None:
        return
    grading.causes.current = meta.id
    why = grading.unavailable(meta.needs)
    if why and meta.needs == "engine" and grading.options.require_engine:
        raise CheckFailed(f"--docker was given but {why}")  # the run must build: a failure
    if why:
        note = getattr(getattr(item, "module", None), "skip_note", None)
        pytest.skip(why + (note(grading, meta.id) if callable(note) else ""))


@pytest.fixture(autouse=True)
def _gradable_upload(grading: Grading) -> None:
    """An upload with nothing of the assignment in it: every check fails in one line (the
    verdict at the top of the report says why), and no code of it runs."""
    if grading.empty_upload:
        raise CheckFailed(f"{NOT_GRADED}{EMPTY}")


def _message(excinfo: pytest.ExceptionInfo[BaseException]) -> str:
    value = excinfo.value
    if isinstance(value, (CheckFailed, FileProblem)):
        return str(value)
    if isinstance(value, AssertionError):
        return str(value).split("\nassert ")[0]
    return f"the grader could not complete this check: {type(value).__name__}: {value}"


def _status(report: pytest.TestReport) -> str | None:
    if report.when == "call":
        return PASSED if report.passed else FAILED if report.failed else SKIPPED
    if report.when == "setup" and not report.passed:
        return SKIPPED if report.skipped else FAILED
    return None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    meta = info(item)
    status = _status(report)
    if meta is None or status is None:
        return report
    output = ""
    if report.skipped and isinstance(report.longrepr, tuple):
        output = str(report.longrepr[2]).removeprefix("Skipped: ")
    elif report.failed and call.excinfo is not None:
        output = _message(call.excinfo)
    result = CheckResult(
        meta.id, meta.title, meta.stage, meta.points, status, output.strip(), meta.hidden
    )
    item.config.stash[RESULTS].append(result)
    return report


def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    grading = config.stash.get(GRADING, None)
    if grading is None:
        return
    report = Report(
        submission=str(grading.submission),
        spec=grading.spec.name,
        stage=grading.options.stage,
        seed=grading.options.seed,
        isolation=grading.isolation,
        checks=config.stash[RESULTS],
        seconds=time.monotonic() - config.stash[STARTED],
        notes=[note] if (note := stage1_note(grading)) else [],
        verdict=grading.verdict,
        machine=grading.machine,
    )
    run = _run_plugin(config)
    if run is not None:
        run.grader_report = report
    path = config.getoption("grader_results")
    if path:
        Path(path).write_text(json.dumps(report.to_json(), indent=2))
    grading.close()


def pytest_report_header(config: pytest.Config) -> str:
    g = config.stash[GRADING]
    return f"grading {g.submission} with the {g.spec.name} spec, stages 1-{g.options.stage}"
