"""grader/grading/view.py: the one list of what the sandbox may see."""

from __future__ import annotations

import sys
from pathlib import Path

from grader.environment import LockedEnv
from grader.grading.probe import PROBES
from grader.grading.view import visible


def test_only_what_the_run_needs_is_visible(tmp_path: Path) -> None:
    dataset = tmp_path / "credit.csv"
    assert visible(None, LockedEnv(None), None, None) == [PROBES]
    paths = visible(dataset, LockedEnv(None), "/usr/bin/uv", Path(sys.base_prefix))
    assert paths == [PROBES, Path("/usr/bin/uv"), Path(sys.base_prefix), dataset]
    assert PROBES.name == "probes" and (PROBES / "probe.py").is_file()
