"""The grader's CLI with a shorter training budget, for the hostile corpus; reports peak memory.

    python tests/hostile/grade_budget.py TRAIN_SECONDS [grade arguments...]

The grader gives `train.py` 90 s (the spec's `train_seconds`); a corpus of a dozen hostile
submissions cannot wait that long for each, so this sets it for every spec, then runs
`grader.cli.main` unchanged. On exit it prints `GRADER-PEAK-RSS-KB <n>` on stderr: the peak
memory of the grader's own process (student code runs in its children).
"""

from __future__ import annotations

import dataclasses
import resource
import sys

import grader.specs


def main() -> int:
    seconds = float(sys.argv[1])
    for name, spec in list(grader.specs.SPECS.items()):
        grader.specs.SPECS[name] = dataclasses.replace(spec, train_seconds=seconds)
    from grader.cli import main as grade

    try:
        return grade(sys.argv[2:])
    finally:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(f"GRADER-PEAK-RSS-KB {peak}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
