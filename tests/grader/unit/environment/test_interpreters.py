"""grader/environment/interpreters.py: uv itself, and an interpreter for uv in the sandbox."""

from __future__ import annotations

import sys
from pathlib import Path

from grader.environment.interpreters import real_uv, uv_interpreter


def test_uv_is_the_binary_itself() -> None:
    uv = real_uv()
    assert uv is not None and "/shims/" not in uv and Path(uv).is_file()


def test_the_graders_own_base_interpreter_serves_its_own_version() -> None:
    mine = f"{sys.version_info.major}.{sys.version_info.minor}"
    found = uv_interpreter(None, mine)
    assert found is not None and found[1] == Path(sys.base_prefix)
    assert uv_interpreter(None, "not a version") == found  # read as "the grader's own"
    assert uv_interpreter(None, "2.7") is None  # another version needs uv to find it
