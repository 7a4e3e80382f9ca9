"""Each root cause said once, where it is charged.

A failed training, an app that does not start, a missing Dockerfile: many checks cannot be
graded without what failed. The first check of a run that meets a cause (checks run in id
order, so it is the one that names it: 1.1 for training, 3.1 for the app) says it in full;
every later check that meets it says, in one line, "not checked because 3.1 failed". The
contracts ask `message(cause, full)` and fail with the answer (grader/contracts/common.py).
"""

from __future__ import annotations

from grader.results.report import NOT_CHECKED


class Causes:
    """The causes met in one run, and the check that charged each."""

    def __init__(self) -> None:
        self.current = ""  # the check running now (the contracts' plugin sets it)
        self._charged: dict[str, str] = {}

    def charge(self, cause: str) -> None:
        """The running check fails because of `cause` and says so in full."""
        self._charged.setdefault(cause, self.current)

    def charged_at(self, cause: str) -> str | None:
        return self._charged.get(cause)

    def message(self, cause: str, full: str) -> str:
        """What the running check says for `cause`: `full` where it is met first, else the
        one line that names the check where it was said."""
        first = self._charged.get(cause)
        if first is not None and first != self.current:
            return f"{NOT_CHECKED}{first} failed"
        self.charge(cause)
        return full
