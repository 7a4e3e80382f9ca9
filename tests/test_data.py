"""Data loading of the lesson scripts: CHURN_DATA, download with checksum and cache, clear errors,
and preprocessing that is correct on pandas 3."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
from pathlib import Path
from types import ModuleType

import pytest
from support import ROOT, STEPS, python

TRAIN = ROOT / "01-train" / "train.py"


def load_train_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("lesson_train", TRAIN)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_train(
    tmp_path: Path, env: dict[str, str], prelude: str = ""
) -> subprocess.CompletedProcess[str]:
    """train.py in a scratch folder, HOME in tmp_path (an empty download cache), no CHURN_DATA
    unless given, and any download sent to a closed local port (offline)."""
    shutil.copy(TRAIN, tmp_path / "train.py")
    base = {k: v for k, v in os.environ.items() if k not in {"CHURN_DATA", "CREDIT_DATA"}}
    base |= {
        "HOME": str(tmp_path),
        "https_proxy": "http://127.0.0.1:9",
        "http_proxy": "http://127.0.0.1:9",
    }
    code = prelude + "import runpy; runpy.run_path('train.py', run_name='__main__')"
    return subprocess.run(
        [python(), "-c", code],
        cwd=tmp_path,
        env=base | env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_missing_churn_data_file_is_a_clear_error(tmp_path: Path) -> None:
    result = run_train(tmp_path, {"CHURN_DATA": str(tmp_path / "nope.csv")})
    assert result.returncode != 0
    assert "CHURN_DATA" in result.stderr and "Traceback" not in result.stderr


def test_offline_download_is_a_clear_error_naming_churn_data(tmp_path: Path) -> None:
    result = run_train(tmp_path, {})
    assert result.returncode != 0
    assert "could not download the dataset" in result.stderr
    assert "CHURN_DATA" in result.stderr and "Traceback" not in result.stderr


def test_bad_checksum_is_refused(tmp_path: Path) -> None:
    fake = (
        "import urllib.request\n"
        "def fake(url, path):\n"
        "    open(path, 'w').write('customerID,Churn\\n1,Yes\\n')\n"
        "urllib.request.urlretrieve = fake\n"
    )
    result = run_train(tmp_path, {}, prelude=fake)
    assert result.returncode != 0
    assert "sha256" in result.stderr and "CHURN_DATA" in result.stderr
    assert not list((tmp_path / ".cache").rglob("*.csv")), "a bad download must not be cached"


def test_cached_download_is_used_offline(tmp_path: Path, churn_csv: Path) -> None:
    module = load_train_module()
    cache = tmp_path / ".cache" / "deploy-course" / module.CACHE.name
    cache.parent.mkdir(parents=True)
    shutil.copy(churn_csv, cache)
    result = run_train(tmp_path, {})
    assert result.returncode == 0, result.stderr
    assert "test auc = 0.8585" in result.stdout


def test_preprocessing_on_pandas_3(churn_csv: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHURN_DATA", str(churn_csv))
    module = load_train_module()
    df = module.load_data()
    assert len(df) == 7043
    assert list(df.columns[:3]) == ["customerid", "gender", "seniorcitizen"]
    assert df["churn"].isin([0, 1]).all() and round(df["churn"].mean(), 3) == 0.265
    assert df["totalcharges"].dtype.kind == "f" and (df["totalcharges"] == 0).sum() == 11
    for col in module.CATEGORICAL:
        values = df[col].astype(str)
        assert (values == values.str.lower()).all() and not values.str.contains(" ").any(), col
    assert set(df["paymentmethod"]) == {
        "electronic_check",
        "mailed_check",
        "bank_transfer_(automatic)",
        "credit_card_(automatic)",
    }


def test_every_step_loads_data_the_same_way() -> None:
    """The data-loading part of train.py is the same text in every step."""

    def data_part(path: Path) -> str:
        text = path.read_text()
        return text[text.index("def sha256") : text.index("def train(")]

    reference = data_part(TRAIN)
    for step in STEPS:
        train = ROOT / step / "train.py"
        if train.exists():
            assert data_part(train) == reference, f"{step}/train.py loads the data differently"
