"""grader/environment/install.py: the submission's uv.lock installed."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import pytest

from grader import environment
from tests.support import ROOT


def test_missing_module_is_named() -> None:
    tail = "Traceback...\n  import pandas as pd\nModuleNotFoundError: No module named 'pandas'"
    assert environment.missing_module(tail) == "pandas"
    assert (
        environment.missing_module("ModuleNotFoundError: No module named 'sklearn.x'") == "sklearn"
    )
    assert environment.missing_module("all fine") is None


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
            {
                "name": "d",
                "source": {"registry": "https://pypi.org/simple"},
                "wheels": [{"url": "http://10.0.0.1/d.whl"}],
            },
            {"name": "e", "source": {"virtual": "."}},
        ]
    }
    assert [f.split()[0] for f in environment.foreign_sources(lock)] == ["a", "b", "c", "d"]


def test_an_editable_or_path_source_other_than_the_project_is_refused() -> None:
    lock = {
        "package": [
            {"name": "course", "source": {"editable": "."}},  # the project itself: fine
            {"name": "mine", "source": {"editable": "../other"}},
            {"name": "theirs", "source": {"path": "../wheels/x.whl"}},
        ]
    }
    assert [f.split()[0] for f in environment.foreign_sources(lock)] == ["mine", "theirs"]


def test_a_lock_that_would_download_too_much_is_refused_before_any_download() -> None:
    from grader.environment.install import MAX_DOWNLOAD, _refused

    wheel = {"url": "https://files.pythonhosted.org/x.whl", "size": MAX_DOWNLOAD + 1}
    lock = {
        "package": [
            {"name": "huge", "source": {"registry": "https://pypi.org/simple"}, "wheels": [wheel]}
        ]
    }
    why = _refused(lock)
    assert "would download about 2.0 GiB" in why and "`uv remove` the rest" in why


def test_prune_keeps_the_most_recent_and_those_used_within_the_hour(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Environments past ENVS_KEEP go, oldest first, unless used in the last hour (an older
    grader may still use one without holding its lock)."""
    from grader.environment.install import prune, shared_root
    from grader.sandbox import owned

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    root = owned.own_dir(shared_root())
    now = time.time()
    ages = {"new-a": 0, "new-b": 60, "recent": 1800, "old-a": 7200, "old-b": 9000}
    for name, age in ages.items():
        (root / name).mkdir()
        (root / name / "marker").touch()
        lock = root / f"{name}.lock"
        lock.touch()
        os.utime(lock, (now - age, now - age))
    prune(keep=2)
    left = sorted(p.name for p in root.iterdir() if p.is_dir())
    assert left == ["new-a", "new-b", "recent"]
