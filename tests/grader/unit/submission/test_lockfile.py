"""grader/submission/lockfile.py: what uv.lock lacks, and a workspace above."""

from __future__ import annotations

from pathlib import Path

from grader.submission import lockfile
from tests.grader_variants import FIXTURES
from tests.support import ROOT


def test_a_misspelt_dependency_is_named() -> None:
    import tomllib

    lock = tomllib.loads((ROOT / "solutions" / "uv.lock").read_text())
    pyproject = tomllib.loads((FIXTURES / "misspelt-dependency" / "pyproject.toml").read_text())
    assert lockfile.unlocked(pyproject, lock) == ["fastapii"]
    assert lockfile.meant("fastapii", lockfile.locked_names(lock)) == "fastapi"
    assert lockfile.meant("fastapi", lockfile.locked_names(lock)) is None
    solution = tomllib.loads((ROOT / "solutions" / "pyproject.toml").read_text())
    assert lockfile.unlocked(solution, lock) == []


def test_a_uv_workspace_above_the_folder_is_found(tmp_path: Path) -> None:
    """What `uv init` without --no-workspace leaves: the repository's pyproject.toml lists the
    folder as a member of its workspace."""
    (tmp_path / "homework").mkdir()
    assert lockfile.workspace_above(tmp_path / "homework") is None
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "course"\nversion = "0"\n\n[tool.uv.workspace]\nmembers = ["homework"]\n'
    )
    assert lockfile.workspace_above(tmp_path / "homework") == tmp_path / "pyproject.toml"
    (tmp_path / "other").mkdir()
    assert lockfile.workspace_above(tmp_path / "other") is None
