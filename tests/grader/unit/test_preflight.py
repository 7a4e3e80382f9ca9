"""grader/preflight.py: may this grading go on here. (Without bubblewrap as `grade` runs it:
tests/hostile/test_safe_by_default.py.)"""

from __future__ import annotations

import pytest

from grader import preflight
from grader.options import Options


@pytest.fixture
def no_bwrap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRADER_NO_BWRAP", "1")


@pytest.mark.usefixtures("no_bwrap")
def test_without_the_sandbox_a_protected_grading_is_refused() -> None:
    assert preflight.mode() in ("uid", "none")
    seeded = preflight.check(Options(seed=7))
    assert seeded.refusal.startswith("a seeded grading needs the sandbox, but GRADER_NO_BWRAP")
    assert "--no-sandbox" in seeded.refusal and "grade doctor" in seeded.refusal
    assert preflight.check(Options(), cohort=True).refusal.startswith("a cohort needs")
    assert preflight.check(Options(require_sandbox=True)).refusal.startswith("this grading")
    in_argv = preflight.check(Options(seed=7, no_sandbox=True), seed_in_argv=True)
    assert "--seed-file FILE" in in_argv.refusal


@pytest.mark.usefixtures("no_bwrap")
def test_an_unprotected_grading_goes_on_with_a_warning_or_says_what_it_cannot_reach() -> None:
    verdict = preflight.check(Options(no_sandbox=True))
    if verdict.refusal:  # as root: the sandbox's uid must reach this interpreter
        assert "cannot run" in verdict.refusal and verdict.mode == "uid"
    else:
        assert verdict.warning.startswith("WARNING: graded WITHOUT the sandbox (--no-sandbox)")


def test_with_bubblewrap_nothing_is_said() -> None:
    if preflight.mode() != "bubblewrap":
        pytest.skip("bubblewrap cannot start here")
    assert preflight.check(Options(seed=7)) == preflight.Verdict(mode="bubblewrap")
