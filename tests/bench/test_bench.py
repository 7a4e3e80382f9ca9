"""The serving benchmark runs end to end (--quick). It measures; nothing here asserts a speed."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT, data_env

pytestmark = pytest.mark.slow


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk not installed (apt-get install wrk)")
def test_run_quick(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, "bench/run.py", "--quick", "--json", str(out)],
        cwd=ROOT,
        env=data_env(),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    data = json.loads(out.read_text())
    measured = {(p["server"], p["path"]) for p in data["throughput"] if p["runs"]}
    assert measured == {
        ("07 (pickle)", "/predict"),
        ("07 (pickle)", "/ping"),
        ("08 (pickle, hardened)", "/predict"),
        ("08 (pickle, hardened)", "/ping"),
        ("08 (pickle, hardened)", "/predict_batch"),
        ("09 (ONNX)", "/predict"),
        ("09 (ONNX)", "/ping"),
        ("09 (ONNX)", "/predict_batch"),
        ("Flask + gunicorn", "/predict"),
        ("Flask + gunicorn", "/ping"),
    }
    starts = {s["case"]: s for s in data["cold_start"]}
    assert set(starts) == {"07, local", "08, local", "09, local"}
    assert all(s["seconds"] and s["rss_mb"] for s in starts.values())
    for heading in ("## Latency and throughput", "## Cold start", "## Targets"):
        assert heading in result.stdout
    assert "| 09 /predict ≥ 2× 07's (by CPU time per request) |" in result.stdout
    assert data["settings"]["rounds"] == 1
