"""grader/probes/model_probe.py: the model child's loading and scoring."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from grader.probes import model_probe


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
