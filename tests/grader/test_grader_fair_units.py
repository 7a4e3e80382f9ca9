"""Fast tests of the fairness rules' parts: equivalent forms, lenient readers, stated ranges,
the dataset lookup, fly.toml as flyctl reads it (no student code runs)."""

from __future__ import annotations

import hashlib
import pickle
import random
import re
import sys
from pathlib import Path

import pytest
from support import ROOT

from grader import diagnose, environment
from grader.contracts.common import read_prediction
from grader.probes import model_probe
from grader.records import in_ranges, public_bad_requests, seeded_bad_requests, valid_records
from grader.specs import CREDIT, DatasetMissing
from grader.submission import flytoml

FLY = """\
app = "x"
[http_service]
  internal_port = 9696
  auto_stop_machines = {value}
  auto_start_machines = true
"""


@pytest.mark.parametrize("value", ["true", "false", '"stop"', '"off"', '"suspend"'])
def test_fly_toml_accepts_what_flyctl_accepts(value: str) -> None:
    import tomllib

    assert flytoml.problems(tomllib.loads(FLY.format(value=value))) == []


def test_fly_toml_still_refuses_what_flyctl_refuses() -> None:
    import tomllib

    problems = flytoml.problems(tomllib.loads(FLY.format(value='"sometimes"')))
    assert problems and "auto_stop_machines" in problems[0]
    problems = flytoml.problems(tomllib.loads('[http_service]\ninternal_port = "x"\n'))
    assert problems and "internal_port" in problems[0]


def test_renamed_fields_are_read_where_they_are() -> None:
    spec_names = ("card_probability", "card")
    assert read_prediction({"card_probability": 0.4, "card": False}, *spec_names)[:2] == (
        0.4,
        False,
    )
    assert read_prediction({"probability": 0.7, "card": True}, *spec_names)[:2] == (0.7, True)
    assert read_prediction({"p": 0.7, "approved": True}, *spec_names)[:2] == (0.7, True)
    # ambiguous: two numbers in [0, 1], nothing is guessed
    assert read_prediction({"a": 0.1, "b": 0.2, "card": True}, *spec_names)[0] is None


@pytest.mark.slow  # imports scikit-learn or runs the grader in child processes
def test_model_bin_may_be_a_pipeline(tmp_path: Path) -> None:
    from sklearn.feature_extraction import DictVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    records = [{"a": float(i), "b": "x" if i % 2 else "y"} for i in range(20)]
    targets = [i % 2 for i in range(20)]
    pipeline = make_pipeline(DictVectorizer(), LogisticRegression()).fit(records, targets)
    (tmp_path / "model.bin").write_bytes(pickle.dumps(pipeline))
    (tmp_path / "pair.bin").write_bytes(pickle.dumps((pipeline[0], pipeline[1])))
    as_pipeline = model_probe.probe_model(str(tmp_path / "model.bin"), records)
    as_pair = model_probe.probe_model(str(tmp_path / "pair.bin"), records)
    assert "error" not in as_pipeline and as_pipeline["steps"]
    assert as_pipeline["probabilities"] == as_pair["probabilities"]
    assert as_pipeline["features"] == as_pair["features"] == ["a", "b=x", "b=y"]


def test_hidden_records_stay_inside_the_stated_ranges(credit_csv: Path) -> None:
    data = CREDIT.load(credit_csv)
    test = CREDIT.split(data).test
    for seed in range(30):
        rng = random.Random(f"seed-{seed}-credit")
        assert all(in_ranges(CREDIT, r) for r in valid_records(CREDIT, test, rng, 12))
        # a bad request breaks one field only: the rest is a valid applicant
        for bad in seeded_bad_requests(CREDIT, test, rng, 12):
            rest = {k: v for k, v in bad.body.items() if k != bad.field and k in CREDIT.features}
            assert all(CREDIT.ranges[k][0] <= v <= CREDIT.ranges[k][1]
                       for k, v in rest.items() if k in CREDIT.ranges)  # fmt: skip
    assert in_ranges(CREDIT, CREDIT.example)


def test_readme_states_the_ranges() -> None:
    text = (ROOT / "homework" / "README.md").read_text()
    stated = {
        m.group(1): (float(m.group(2)), float(m.group(3)))
        for m in re.finditer(r"^\| `(\w+)` \| ([\d.]+) to ([\d.]+)", text, re.M)
    }
    assert stated == {k: (float(lo), float(hi)) for k, (lo, hi) in CREDIT.ranges.items()}


def test_nan_and_infinity_are_probed_as_lax_json(credit_csv: Path) -> None:
    bad = public_bad_requests(CREDIT)
    non_finite = {b.kind: b.body[b.field] for b in bad if b.kind in ("nan", "infinity")}
    assert non_finite == {"nan": "NaN", "infinity": "Infinity"}


def test_dataset_found_as_the_scripts_find_it(tmp_path: Path, credit_csv: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
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


def test_missing_module_is_named() -> None:
    tail = "Traceback...\n  import pandas as pd\nModuleNotFoundError: No module named 'pandas'"
    assert environment.missing_module(tail) == "pandas"
    assert (
        environment.missing_module("ModuleNotFoundError: No module named 'sklearn.x'") == "sklearn"
    )
    assert environment.missing_module("all fine") is None


def test_training_mistakes_are_recognised(credit_csv: Path) -> None:
    data = CREDIT.load(credit_csv)
    ref = diagnose.reference(CREDIT, data)
    assert diagnose.trained_on_all_rows(CREDIT, data, ref.all_fit)
    assert not diagnose.trained_on_all_rows(CREDIT, data, ref.train_fit)
    assert diagnose.leaking(CREDIT, ["age", "share", "expenditure", "owner=yes"]) == [
        "share", "expenditure"]  # fmt: skip
    assert diagnose.leaking(CREDIT, ["age", "owner=yes"]) == []


def test_lock_installs_from_pypi_only() -> None:
    """The grader's machine fetches what the lock names: never a student's URL, git or path."""
    import tomllib

    assert (
        environment.foreign_sources(tomllib.loads((ROOT / "solutions/uv.lock").read_text())) == []
    )
    lock = {
        "package": [
            {"name": "a", "source": {"url": "http://169.254.169.254/a.whl"}},
            {"name": "b", "source": {"git": "https://example.org/b.git"}},
            {"name": "c", "source": {"path": "/etc"}},
            {"name": "d", "source": {"registry": "https://pypi.org/simple"},
             "wheels": [{"url": "http://10.0.0.1/d.whl"}]},
            {"name": "e", "source": {"virtual": "."}},
        ]
    }  # fmt: skip
    assert [f.split()[0] for f in environment.foreign_sources(lock)] == ["a", "b", "c", "d"]


@pytest.mark.slow  # imports scikit-learn or runs the grader in child processes
def test_missing_dataset_is_one_error_of_the_run(tmp_path: Path) -> None:
    """No CREDIT_DATA and no download cache: one setup error, no check graded (nothing for
    a student to lose points on)."""
    import os
    import subprocess

    env = {k: v for k, v in os.environ.items() if k not in ("CREDIT_DATA", "CHURN_DATA")}
    env["HOME"] = str(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "grader.cli", str(ROOT / "solutions"), "--spec", "credit",
         "--json", str(tmp_path / "results.json")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode != 0
    output = proc.stdout + proc.stderr
    assert output.count("the grader cannot run") == 1 and "CREDIT_DATA" in output
    assert "FAIL" not in output and not (tmp_path / "results.json").exists()
