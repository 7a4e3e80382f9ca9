"""grader/environment/install.py: the submission's uv.lock installed."""

from __future__ import annotations

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
