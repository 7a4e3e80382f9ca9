"""grader/probes/siteguard.py: only the verified top-level modules of site-packages import.
(In the probe itself, against .pth files and sitecustomize:
tests/hostile/test_safe_by_default.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.probes.siteguard import SiteGuard


def test_a_module_of_site_packages_not_verified_is_not_found(tmp_path: Path) -> None:
    (tmp_path / "numpy").mkdir()
    (tmp_path / "numpy" / "__init__.py").write_text("")
    (tmp_path / "sitecustomize.py").write_text("import os\n")
    (tmp_path / "evil").mkdir()
    (tmp_path / "evil" / "__init__.py").write_text("")
    guard = SiteGuard(str(tmp_path), frozenset({"numpy"}))
    for name in ("sitecustomize", "evil"):
        with pytest.raises(ModuleNotFoundError, match="not imported by the grader's probe"):
            guard.find_spec(name)
    assert guard.find_spec("numpy") is None, "verified: found by the path finders"
    assert guard.find_spec("json") is None, "the standard library is not site-packages"
    assert guard.find_spec("numpy.linalg") is None, "submodules: their package's own folder"
    assert guard.find_spec("nowhere") is None
