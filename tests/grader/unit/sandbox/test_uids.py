"""grader/sandbox/uids.py: a uid per sandbox, and what such a uid cannot reach."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from grader.sandbox.uids import UID_BASE, SandboxUid, unreachable

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="sandbox uids are the root grader's")


def test_two_sandboxes_hold_two_uids_until_released() -> None:
    a, b = SandboxUid(), SandboxUid()
    try:
        assert a.uid != b.uid and min(a.uid, b.uid) >= UID_BASE
    finally:
        a.release()
        b.release()


def test_what_an_unprivileged_uid_cannot_read_is_named(tmp_path: Path) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    (private / "python").write_text("")
    assert unreachable([Path("/bin/sh"), private / "python"]) == [private / "python"]
