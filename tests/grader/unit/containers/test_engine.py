"""grader/containers/engine.py: the engine, and who may run it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT


@pytest.mark.skipif(
    shutil.which("podman") is None or os.geteuid() != 0,
    reason="needs podman and root (the grader then builds as an unprivileged build user)",
)
def test_a_missing_build_user_is_no_missing_engine(tmp_path: Path) -> None:
    """Podman is here but the build user is not: stage 6's skip says the grader could not
    build images here (true), never "no container engine", and nothing a student receives
    gives set-up advice; the summary, for whoever runs the grader, says how to fix it."""
    from tests.grader_helpers import valid_gradescope
    from tests.support import data_env

    out = tmp_path / "results.json"
    env = {**data_env(), "GRADER_BUILD_USER": "no-such-build-user"}
    argv = [sys.executable, "-m", "grader.cli", str(ROOT / "solutions"), "--spec", "credit"]
    argv += ["--only", "6", "--engine", "podman", "--json", str(out)]
    run = subprocess.run(
        argv,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    results = json.loads(out.read_text())
    valid_gradescope(results)
    skipped = {t["number"]: t["output"] for t in results["tests"] if "skipped" in t["tags"]}
    assert set(skipped) == {"6.9", "6.10", "6.50"}, skipped
    for text in skipped.values():
        assert "could not build images here" in text and "no container engine" not in text
    assert "useradd" not in out.read_text()
    assert "useradd -m no-such-build-user" in run.stdout  # the summary: for the grader's admin
