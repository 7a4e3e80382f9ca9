"""The grader's exit codes (`grade` and `grade batch`)."""

OK = 0  # graded, nothing failed (skipped checks do not fail)
FAILED = 1  # graded, at least one check failed
USAGE = 2  # the command line contradicts itself
BROKEN = 3  # the grader itself could not run: no grade, nothing written
REFUSED = 4  # the grading would not be protected here (grader/preflight.py): nothing run
INTERRUPTED = 130  # Ctrl-C or SIGTERM: nothing recorded
