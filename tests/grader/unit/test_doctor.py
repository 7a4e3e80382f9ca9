"""grader/doctor.py: what this machine will isolate and grade, and each fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader import doctor


def test_each_dataset_is_found_or_its_fix_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, credit_csv: Path
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))  # no download cache
    monkeypatch.setenv("CREDIT_DATA", str(credit_csv))
    monkeypatch.delenv("CHURN_DATA", raising=False)
    found = {f.part: f for f in doctor.datasets()}
    assert found["dataset credit"].ok and found["dataset credit"].detail == str(
        credit_csv.resolve()
    )
    churn = found["dataset churn"]
    assert not churn.ok and churn.fix.startswith("export CHURN_DATA=/path/to/")


def test_the_report_says_ready_only_with_a_sandbox(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert doctor.uv().ok
    monkeypatch.setenv("GRADER_NO_BWRAP", "1")
    assert doctor.main(["--engine", "podman"]) == 1
    out = capsys.readouterr().out
    assert "[MISSING] sandbox: " in out and "NOT READY: sandbox" in out
