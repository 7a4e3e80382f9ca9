"""grader/sandbox/bwrap.py: what a sandboxed command sees, as bubblewrap's command line."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

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


@pytest.mark.skipif(bwrap.bwrap_available() is None, reason="needs bubblewrap")
def test_the_sandbox_init_shows_no_host_path_in_its_command_line(tmp_path: Path) -> None:
    """bubblewrap reads its arguments from a file (`--args FD`): `/proc/1/cmdline` inside
    shows no folder of the grading machine (the scratch copy, the dataset, the grader)."""
    from grader.sandbox import Sandbox

    submission = tmp_path / "student"
    submission.mkdir()
    sandbox = Sandbox(submission, base=tmp_path)
    try:
        run = sandbox.run(["cat", "/proc/1/cmdline"])
    finally:
        sandbox.close()
    assert run.ok, run.describe() + run.stderr
    cmdline = run.stdout.replace("\0", " ")
    assert cmdline.strip(), "no command line read"
    for host in (str(tmp_path), str(Path(__file__).parents[4]), sys.prefix):
        assert host not in cmdline, cmdline
