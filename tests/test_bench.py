"""The benchmarks run end to end (short mode). They measure; nothing here asserts a speed."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support import ROOT, copy_step, data_env, python

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """05-uv trained once, for both benchmarks (each would otherwise train its own copy)."""
    step = copy_step("05-uv", tmp_path_factory.mktemp("bench"))
    subprocess.run([python(), "train.py"], cwd=step, env=data_env(), check=True, timeout=600)
    return step


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk not installed (apt-get install wrk)")
def test_serve_quick(trained: Path, tmp_path: Path) -> None:
    out = tmp_path / "serve.json"
    cmd = [sys.executable, "bench/serve.py", "--quick", "--trained", str(trained), "--json", out]
    result = subprocess.run(
        cmd, cwd=ROOT, env=data_env(), capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    measured = {(p["server"], p["path"]) for p in json.loads(out.read_text()) if p["runs"]}
    assert measured == {
        ("final (05-uv)", "/predict"),
        ("final (05-uv)", "/ping"),
        ("final (05-uv)", "/predict_batch"),
        ("Flask + gunicorn", "/predict"),
        ("Flask + gunicorn", "/ping"),
        ("fast path", "/predict"),
        ("fast path", "/ping"),
        ("fast path", "/predict_batch"),
    }
    assert "| final (05-uv) | /predict |" in result.stdout


def test_coldstart_quick(trained: Path) -> None:
    result = subprocess.run(
        [sys.executable, "bench/coldstart.py", "--quick", "--trained", str(trained)],
        cwd=ROOT, env=data_env(), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    for case in ("lesson, local, compiled", "fast path, local, not compiled"):
        assert f"| {case} |" in result.stdout
