"""grader/exitcodes.py: the exit codes of `grade` and `grade batch`."""

from __future__ import annotations

from grader import exitcodes


def test_exit_codes_are_distinct_and_conventional() -> None:
    codes = {k: v for k, v in vars(exitcodes).items() if k.isupper()}
    assert set(codes) == {"OK", "FAILED", "USAGE", "BROKEN", "REFUSED", "INTERRUPTED"}
    assert len(set(codes.values())) == len(codes)
    assert (exitcodes.OK, exitcodes.USAGE, exitcodes.INTERRUPTED) == (0, 2, 130)  # argparse, shells
