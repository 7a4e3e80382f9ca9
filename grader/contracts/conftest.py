"""pytest plugin of the contracts: options, the `grading` fixture, result collection.

Run directly:  uv run --group grader pytest grader/contracts --submission 04-pydantic --stage 4
(the CLI `grade` runs the same tests and prints a summary instead of pytest's output).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from grader.checks import CheckFailed, info
from grader.contracts.common import stage1_note
from grader.options import add_pytest_options, session_options, values_from_pytest
from grader.report import FAILED, PASSED, SKIPPED, CheckResult, Report
from grader.session import Grading
from grader.specs import DatasetMissing

RESULTS = pytest.StashKey[list[CheckResult]]()
STARTED = pytest.StashKey[float]()
GRADING = pytest.StashKey[Grading]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("grader", "stage contracts")
    group.addoption(
        "--submission",
        default=os.environ.get("GRADE_SUBMISSION", "."),
        help="the folder to grade (default: $GRADE_SUBMISSION or .)",
    )
    add_pytest_options(group, os.environ)  # spec, stage, seed, ... (grader/options.py)
    group.addoption("--grader-results", default=None, help="write the report as JSON here")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "check(id, title, points, hidden=False): a graded check")
    config.stash[RESULTS] = []
    config.stash[STARTED] = time.monotonic()
    submission = Path(config.getoption("submission")).resolve()
    options = session_options(submission, values_from_pytest(config.getoption))
    try:  # a setup problem of the run: said once, not as a failure of every check
        options.spec.dataset_path()
    except DatasetMissing as e:
        raise pytest.UsageError(f"the grader cannot run: {e}") from None
    config.stash[GRADING] = Grading(options)


# Modules whose checks belong to some specs only, when the module does not say so itself with
# a module-level `SPECS = ("credit",)`. Their checks are deselected for the other specs: they
# are not part of that grading at all (no SKIP line, nothing in results.json).
SPEC_ONLY: dict[str, tuple[str, ...]] = {"test_answers.py": ("credit",)}


def applies(item: pytest.Item, spec: str) -> bool:
    """Is the check meant for this spec (module-level SPECS, else SPEC_ONLY, else all)?"""
    module = getattr(item, "module", None)
    specs = getattr(module, "SPECS", None)
    if specs is None:
        specs = SPEC_ONLY.get(item.path.name)
    return specs is None or spec in specs


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    options = config.stash[GRADING].options
    stage, only, spec = options.stage, options.only, options.spec.name
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        meta = info(item)
        if meta is None:
            raise pytest.UsageError(f"{item.nodeid} has no @check(...) marker")
        wanted = meta.stage <= stage and (only is None or meta.stage in only)
        (keep if wanted and applies(item, spec) else drop).append(item)
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


def _message(excinfo: pytest.ExceptionInfo[BaseException]) -> str:
    value = excinfo.value
    if isinstance(value, CheckFailed):
        return str(value)
    if isinstance(value, AssertionError):
        return str(value).split("\nassert ")[0]
    return f"the grader could not complete this check: {type(value).__name__}: {value}"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    meta = info(item)
    if meta is None:
        return report
    results = item.config.stash[RESULTS]
    status, output = None, ""
    if report.when == "call":
        status = PASSED if report.passed else FAILED if report.failed else SKIPPED
    elif report.when == "setup" and not report.passed:
        status = SKIPPED if report.skipped else FAILED
    if report.skipped and isinstance(report.longrepr, tuple):
        output = str(report.longrepr[2]).removeprefix("Skipped: ")
    elif report.failed and call.excinfo is not None:
        output = _message(call.excinfo)
    if status is not None:
        results.append(CheckResult(meta.id, meta.title, meta.stage, meta.points, status,
                                   output.strip(), meta.hidden))  # fmt: skip
    return report


def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    grading = config.stash.get(GRADING, None)
    if grading is None:
        return
    path = config.getoption("grader_results")
    isolation = grading.isolation
    if path:
        report = Report(
            submission=str(grading.submission),
            spec=grading.spec.name,
            stage=grading.options.stage,
            seed=grading.options.seed,
            isolation=isolation,
            checks=config.stash[RESULTS],
            seconds=time.monotonic() - config.stash[STARTED],
            notes=[note] if (note := stage1_note(grading)) else [],
        )
        Path(path).write_text(json.dumps(report.to_json(), indent=2))
    grading.remove_image()
    grading.close()


def pytest_report_header(config: pytest.Config) -> str:
    g = config.stash[GRADING]
    return f"grading {g.submission} with the {g.spec.name} spec, stages 1-{g.options.stage}"
