"""grader/grading/probe.py: the probe's result, read from its result descriptor only. (The
three messages sent to a running probe: every grading, and tests/hostile/.)"""

from __future__ import annotations

from grader.grading.probe import RESULT_MARK, result
from grader.sandbox import RunResult


def _run(stdout: str, result_text: str | None) -> RunResult:
    return RunResult(["probe.py"], 0, stdout, "", 1.0, result_text=result_text)


def test_the_result_is_the_line_with_this_runs_nonce() -> None:
    text = f'{RESULT_MARK} other {{"model": "forged"}}\n{RESULT_MARK} n0nce {{"model": {{}}}}\n'
    assert result(_run("", text), "n0nce") == {"model": {}}
    assert result(_run("", text), "missing") is None


def test_what_student_code_prints_is_never_a_result() -> None:
    forged = f'{RESULT_MARK} n0nce {{"http": "forged"}}\n'
    assert result(_run(forged, None), "n0nce") is None
    assert result(_run("", f"{RESULT_MARK} n0nce not json\n"), "n0nce") is None
    assert result(_run("", f"{RESULT_MARK} n0nce [1, 2]\n"), "n0nce") is None
