"""grader/specs.py: the datasets' preprocessing, split and location."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

from grader.specs import CHURN, CREDIT, DatasetMissing, split
from tests.support import ROOT


@pytest.mark.slow  # imports scikit-learn or runs the grader in child processes
def test_split_matches_sklearn(churn_csv: Path) -> None:
    data = CHURN.load(churn_csv)
    ours = split(data, 0.2, 1)
    code = (
        "import json,sys;from sklearn.model_selection import train_test_split;"
        "n=int(sys.argv[1]);_,t=train_test_split(list(range(n)),test_size=0.2,random_state=1);"
        "print(json.dumps(t))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(len(data.records))],
        capture_output=True,
        text=True,
        check=True,
    )
    expected = [data.records[i] for i in __import__("json").loads(out.stdout)]
    assert ours.test.records == expected


def test_credit_preprocessing(credit_csv: Path) -> None:
    data = CREDIT.load(credit_csv)
    assert len(data.records) == 1319
    assert set(data.records[0]) == set(CREDIT.features)
    assert set(data.targets) == {0, 1}


def test_readme_states_the_ranges() -> None:
    text = (ROOT / "homework" / "README.md").read_text()
    stated = {
        m.group(1): (float(m.group(2)), float(m.group(3)))
        for m in re.finditer(r"^\| `(\w+)` \| ([\d.]+) to ([\d.]+)", text, re.M)
    }
    assert stated == {k: (float(lo), float(hi)) for k, (lo, hi) in CREDIT.ranges.items()}


def test_dataset_found_as_the_scripts_find_it(
    tmp_path: Path, credit_csv: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CREDIT_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(DatasetMissing, match="CREDIT_DATA"):
        CREDIT.dataset_path()
    cache = tmp_path / ".cache" / "deploy-course" / "AER_credit_card_data.csv"
    cache.parent.mkdir(parents=True)
    cache.write_text("not the dataset")
    with pytest.raises(DatasetMissing):  # a damaged download is not used
        CREDIT.dataset_path()
    cache.write_bytes(credit_csv.read_bytes())
    assert hashlib.sha256(cache.read_bytes()).hexdigest() == CREDIT.dataset_sha256
    assert CREDIT.dataset_path() == cache
