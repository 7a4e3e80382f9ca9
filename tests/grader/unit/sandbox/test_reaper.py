"""grader/sandbox/reaper.py: the processes a sandbox's commands leave behind are found."""

from __future__ import annotations

import os
import subprocess

from grader.sandbox import reaper


def test_a_child_started_after_a_moment_is_found_unless_kept() -> None:
    since = reaper.start_ticks()
    child = subprocess.Popen(["sleep", "30"])
    try:
        assert child.pid in reaper.orphans(set(), since)
        assert child.pid not in reaper.orphans({child.pid}, since)
        assert child.pid in reaper.pids_of_uid(os.getuid())
    finally:
        child.kill()
        child.wait()
    assert child.pid not in reaper.orphans(set(), since)
