"""grader/environment/trust.py: what of an environment the probe may import. (Refusals of files
written into allowed packages: tests/hostile/test_safe_by_default.py.)"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

from grader.environment import trust


def _dist(site: Path, name: str, files: dict[str, str]) -> None:
    info = site / f"{name}-1.0.dist-info"
    info.mkdir(parents=True)
    rows = []
    for path, text in files.items():
        (site / path).parent.mkdir(parents=True, exist_ok=True)
        (site / path).write_text(text)
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        rows.append(f"{path},sha256={digest.decode()},{len(text)}")
    (info / "RECORD").write_text("\n".join(rows))


def test_only_allowed_distributions_modules_are_trusted(tmp_path: Path) -> None:
    site = tmp_path / "site-packages"
    _dist(site, "six", {"six.py": "x = 1\n"})
    _dist(site, "numpy", {"numpy/__init__.py": "", "numpy.libs/libx.so": ""})
    _dist(site, "student_helper", {"helper/__init__.py": ""})
    verdict = trust.verify(site)
    assert verdict.modules == ("numpy", "six") and verdict.problems == ()
    (site / "numpy" / "link.py").symlink_to(site / "six.py")
    assert "numpy/link.py is a symlink" in trust.verify(site).problems


def test_the_verdict_is_kept_in_the_environment(tmp_path: Path) -> None:
    assert trust.of_environment(tmp_path) is None
    record = trust.Trusted(tmp_path / "site-packages", ("numpy",))
    (tmp_path / trust.RECORD_FILE).write_text(record.to_json())
    assert trust.of_environment(tmp_path) == record
    (tmp_path / trust.RECORD_FILE).write_text("{not json")
    assert trust.of_environment(tmp_path) is None


def test_the_graders_own_environment_serves_a_model() -> None:
    modules = trust.of_grader().modules
    assert {"sklearn", "numpy", "fastapi", "uvicorn"} <= set(modules)
    assert "pytest" not in modules and trust.normalize("Scikit_Learn") == "scikit-learn"
