"""grader/cli.py: `grade`, run as a command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT


@pytest.mark.slow  # imports scikit-learn or runs the grader in child processes
def test_missing_dataset_is_one_error_of_the_run(tmp_path: Path) -> None:
    """No CREDIT_DATA and no download cache: one setup error, no check graded (nothing for
    a student to lose points on)."""

    env = {k: v for k, v in os.environ.items() if k not in ("CREDIT_DATA", "CHURN_DATA")}
    env["HOME"] = str(tmp_path)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "grader.cli",
            str(ROOT / "solutions"),
            "--spec",
            "credit",
            "--json",
            str(tmp_path / "results.json"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode != 0
    output = proc.stdout + proc.stderr
    assert output.count("the grader cannot run") == 1 and "CREDIT_DATA" in output
    assert "FAIL" not in output and not (tmp_path / "results.json").exists()
