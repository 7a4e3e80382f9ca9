"""Runs untrusted student code in a child process with limits and, where possible, isolation.

Depends on nothing else of the grader. How it isolates, and what it does not defend against:
grader/INTERNALS.md and docs/reliability.md."""

from grader.sandbox.bwrap import INSIDE, bwrap_available
from grader.sandbox.process import Limits, Process, RunResult, Tail
from grader.sandbox.sandbox import (
    MAX_SUBMISSION_BYTES,
    NOT_COPIED,
    Sandbox,
    SubmissionTooLarge,
    Unreachable,
)
from grader.sandbox.watchdog import WRITE_BYTES, WRITE_ENTRIES, disk_usage

__all__ = [
    "INSIDE",
    "MAX_SUBMISSION_BYTES",
    "NOT_COPIED",
    "WRITE_BYTES",
    "WRITE_ENTRIES",
    "Limits",
    "Process",
    "RunResult",
    "Sandbox",
    "SubmissionTooLarge",
    "Tail",
    "Unreachable",
    "bwrap_available",
    "disk_usage",
]
