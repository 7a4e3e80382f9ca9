"""grader/sandbox/sandbox.py: the scratch copy and what a run may do in it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from grader.sandbox import Limits, Sandbox


@pytest.mark.slow  # imports scikit-learn or runs the grader in child processes
def test_sandbox_limits_and_isolation(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "hello.txt").write_text("hi")
    box = Sandbox(tmp_path / "sub")
    try:
        hang = box.run([sys.executable, "-c", "while True: pass"], Limits(wall_seconds=2))
        assert hang.timed_out and not hang.ok
        env = box.run([sys.executable, "-c", "import os; print(sorted(os.environ))"])
        assert "CHURN_DATA" not in env.stdout and "HOME" in env.stdout
        big = box.run(
            [sys.executable, "-c", "open('big', 'wb').write(b'x' * 3_000_000)"],
            Limits(file_bytes=1_000_000),
        )
        assert not big.ok
        if box.bwrap:
            outside = box.run([sys.executable, "-c", f"open({str(tmp_path)!r} + '/x', 'w')"])
            assert not outside.ok, "the sandbox could write outside its scratch copy"
            # No traffic leaves this machine in tests: look at the interfaces instead.
            net = box.run(
                [
                    sys.executable,
                    "-c",
                    "import socket; print([n for _, n in socket.if_nameindex()])",
                ]
            )
            assert net.stdout.strip() == "['lo']", f"the sandbox has a network: {net.stdout}"
            assert "bubblewrap" in box.isolation
        else:
            assert "rlimits and timeouts only" in box.isolation
        write = box.run([sys.executable, "-c", "open('out.txt', 'w').write('ok')"])
        assert write.ok and (box.scratch / "out.txt").read_text() == "ok"
    finally:
        box.close()
