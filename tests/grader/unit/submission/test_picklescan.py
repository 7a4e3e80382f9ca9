"""grader/submission/picklescan.py: a pickle's scikit-learn version, read without unpickling."""

from __future__ import annotations

import pickle
from pathlib import Path

from grader.submission.picklescan import sklearn_versions


def test_picklescan_reads_version_without_unpickling(tmp_path: Path) -> None:
    class Fake:
        pass

    state = {"coef_": [1.0], "_sklearn_version": "1.6.1"}
    path = tmp_path / "model.bin"
    path.write_bytes(pickle.dumps((state, {"_sklearn_version": "1.6.1"}), protocol=5))
    assert sklearn_versions(path) == {"1.6.1"}
    path.write_bytes(b"not a pickle")
    try:
        sklearn_versions(path)
    except ValueError as e:
        assert "not a readable pickle" in str(e)
    del Fake
