"""grader/sandbox/process.py: `Tail` keeps a bounded tail of what a child prints."""

from __future__ import annotations

import subprocess
import sys

from grader.sandbox.process import Tail


def test_tail_keeps_only_the_last_bytes_of_a_long_output() -> None:
    code = "import sys\nfor i in range(200_000): sys.stdout.write(f'line {i}\\n')\nprint('END')"
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert child.stdout is not None
    tail = Tail(child.stdout, keep=1000)
    child.wait(timeout=60)
    text = tail.text(timeout=10)
    tail.close()
    assert len(text) == 1000 and text.endswith("line 199999\nEND\n")
    assert len(tail.buffer) <= 2 * 1000, "the buffer stays bounded while the child prints"


def test_tail_of_a_short_output_is_all_of_it() -> None:
    child = subprocess.Popen([sys.executable, "-c", "print('hi')"], stdout=subprocess.PIPE)
    assert child.stdout is not None
    tail = Tail(child.stdout, keep=1000)
    child.wait(timeout=60)
    assert tail.text(timeout=10) == "hi\n"
    tail.close()
