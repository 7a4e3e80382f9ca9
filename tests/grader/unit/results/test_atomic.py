"""grader/results/atomic.py: files written whole or not at all."""

from __future__ import annotations

import json
from pathlib import Path

from grader.results.atomic import write_atomic


def test_results_are_written_atomically(tmp_path: Path) -> None:
    target = tmp_path / "students" / "x" / "results.json"
    write_atomic(target, "{}")
    write_atomic(target, '{"score": 1}')
    assert json.loads(target.read_text()) == {"score": 1}
    assert [p.name for p in target.parent.iterdir()] == ["results.json"]
