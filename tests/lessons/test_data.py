"""Data loading of the lesson scripts: CHURN_DATA, download with checksum and cache, clear errors,
and preprocessing that is correct on pandas 3.

The error cases run train.py as a script (`runpy`, as `python train.py` does) in this process,
with HOME in a scratch folder (an empty download cache) and downloads sent to a closed local
port (offline): they end before any training, so they are fast.
"""

from __future__ import annotations

import os
import runpy
import shutil
import subprocess
import urllib.request
from pathlib import Path

import pytest

from tests.support import ALL_STEPS, ROOT, python

TRAIN = ROOT / "01-train" / "train.py"
# Where the download helper caches the CSV (train.py, "Where the data comes from").
CACHE = Path(".cache") / "deploy-course" / "WA_Fn-UseC_-Telco-Customer-Churn.csv"


@pytest.fixture
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A scratch folder with train.py, as HOME and cwd; no CHURN_DATA; no network."""
    shutil.copy(TRAIN, tmp_path / "train.py")
    monkeypatch.delenv("CHURN_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("https_proxy", "http://127.0.0.1:9")
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def exit_message(folder: Path) -> str:
    """Run train.py as `python train.py` would; it must stop with a message (SystemExit)."""
    with pytest.raises(SystemExit) as stopped:
        runpy.run_path(str(folder / "train.py"), run_name="__main__")
    assert isinstance(stopped.value.code, str), f"exit code {stopped.value.code!r}, no message"
    return stopped.value.code


def test_missing_churn_data_file_is_a_clear_error(
    offline: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHURN_DATA", str(offline / "nope.csv"))
    assert "CHURN_DATA" in exit_message(offline)


def test_offline_download_is_a_clear_error_naming_churn_data(offline: Path) -> None:
    message = exit_message(offline)
    assert "could not download the dataset" in message and "CHURN_DATA" in message


def test_bad_checksum_is_refused(offline: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fake(url: str, path: Path) -> None:
        Path(path).write_text("customerID,Churn\n1,Yes\n")

    monkeypatch.setattr(urllib.request, "urlretrieve", fake)
    message = exit_message(offline)
    assert "sha256" in message and "CHURN_DATA" in message
    assert not list((offline / ".cache").rglob("*.csv")), "a bad download must not be cached"


@pytest.mark.slow  # trains the model
def test_cached_download_is_used_offline(tmp_path: Path, churn_csv: Path) -> None:
    shutil.copy(TRAIN, tmp_path / "train.py")
    (tmp_path / CACHE).parent.mkdir(parents=True)
    shutil.copy(churn_csv, tmp_path / CACHE)
    env = {k: v for k, v in os.environ.items() if k not in {"CHURN_DATA", "CREDIT_DATA"}}
    env |= {"HOME": str(tmp_path), "https_proxy": "http://127.0.0.1:9"}
    result = subprocess.run(
        [python(), "train.py"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert "test auc = 0.8585" in result.stdout


def test_preprocessing_on_pandas_3(churn_csv: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHURN_DATA", str(churn_csv))
    module = runpy.run_path(str(TRAIN), run_name="lesson_train")
    df = module["load_data"]()
    assert len(df) == 7043
    assert list(df.columns[:3]) == ["customerid", "gender", "seniorcitizen"]
    assert df["churn"].isin([0, 1]).all() and round(df["churn"].mean(), 3) == 0.265
    assert df["totalcharges"].dtype.kind == "f" and (df["totalcharges"] == 0).sum() == 11
    for col in module["CATEGORICAL"]:
        values = df[col].astype(str)
        assert (values == values.str.lower()).all() and not values.str.contains(" ").any(), col
    assert set(df["paymentmethod"]) == {
        "electronic_check",
        "mailed_check",
        "bank_transfer_(automatic)",
        "credit_card_(automatic)",
    }


def test_every_step_loads_data_the_same_way() -> None:
    """Every step loads the data as step 01 does: the features and `load_data` (before
    `def train(`) and the download helper (its own section after `main`) are the same text."""

    def data_part(path: Path) -> tuple[str, str]:
        text = path.read_text()
        head = text[text.index("\nNUMERICAL = ") : text.index("\ndef train(")]
        tail = text[text.index("\n# --- ") :]
        return head, tail

    reference = data_part(TRAIN)
    for step in ALL_STEPS:
        assert data_part(ROOT / step / "train.py") == reference, (
            f"{step}/train.py loads the data differently"
        )
