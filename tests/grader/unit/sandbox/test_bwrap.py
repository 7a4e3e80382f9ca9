"""grader/sandbox/bwrap.py: what a sandboxed command sees, as bubblewrap's command line."""

from __future__ import annotations

import sys
from pathlib import Path

from grader.sandbox import bwrap


def _pairs(args: list[str], flag: str) -> list[tuple[str, str]]:
    return [(args[i + 1], args[i + 2]) for i, a in enumerate(args) if a == flag]


def test_the_scratch_copy_is_the_only_writable_place(tmp_path: Path) -> None:
    dataset = tmp_path / "data" / "credit.csv"
    dataset.parent.mkdir()
    dataset.write_text("")
    args = bwrap.arguments("/usr/bin/bwrap", tmp_path / "scratch", [dataset], uid=None)
    assert args[0] == "/usr/bin/bwrap" and args[-1] == "--"
    assert _pairs(args, "--bind") == [(str(tmp_path / "scratch"), str(bwrap.INSIDE))]
    assert (str(dataset), str(dataset)) in _pairs(args, "--ro-bind")
    assert ("/usr", "/usr") in _pairs(args, "--ro-bind") or "/usr" not in bwrap.SYSTEM
    assert str(Path.home()) not in args and "/" not in [a for a, _ in _pairs(args, "--ro-bind")]
    for flag in ("--unshare-net", "--unshare-pid", "--die-with-parent", "--new-session"):
        assert flag in args
    assert args[args.index("--tmpfs") - 1].isdigit() and "/tmp" in args


def test_as_a_uid_every_capability_is_dropped(tmp_path: Path) -> None:
    args = bwrap.arguments("/usr/bin/bwrap", tmp_path, [Path(sys.executable)], uid=1_500_000_001)
    after = args[args.index("--") :]
    assert "--reuid=1500000001" in after or args[-3:] == ["--cap-drop", "ALL", "--"]
