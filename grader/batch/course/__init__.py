"""Course-scale grading for `grade batch`: submissions from the students' Git repositories,
late days, manual overrides, per-check and LMS gradebooks, similarity, live deployments and the
audit record of every run. Each module takes plain data and returns data; `run.CourseRun`
connects them to the batch."""

from __future__ import annotations

import os

# Test-only: lets `--repos` clone from plain http on 127.0.0.1 and `--live` probe loopback
# servers (the tests' own git and HTTP servers). Never set it for real grading: every run that
# has it records so in its audit, and the cohort report says so first.
TEST_ONLY_LOOPBACK = "GRADER_TEST_ONLY_ALLOW_LOOPBACK"


def loopback_allowed() -> bool:
    """Whether the test-only loopback switch is on."""
    return os.environ.get(TEST_ONLY_LOOPBACK) == "1"
