"""grader/grading/causes.py: each root cause said in full once."""

from __future__ import annotations

from grader.grading.causes import Causes


def test_each_cause_is_said_in_full_once() -> None:
    causes = Causes()
    causes.current = "3.1"
    assert causes.message("server", "the traceback") == "the traceback"
    causes.current = "3.2"
    assert causes.message("server", "the traceback") == "not checked because 3.1 failed"
    causes.current = "4.1"
    assert causes.message("server", "again") == "not checked because 3.1 failed"
    causes.current = "1.1"
    causes.charge("train")
    causes.current = "1.2"
    assert causes.message("train", "...") == "not checked because 1.1 failed"
