"""grader/sandbox/owned.py: shared folders used only while they are the grader's own."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from grader.sandbox import owned


def test_a_folder_is_made_with_its_mode_and_reused(tmp_path: Path) -> None:
    folder = owned.own_dir(tmp_path / "envs", 0o700)
    assert folder.is_dir() and folder.stat().st_mode & 0o777 == 0o700
    assert owned.own_dir(folder, 0o700) == folder and owned.check_dir(folder)
    assert not owned.check_dir(tmp_path / "missing")


def test_a_symlink_or_a_world_writable_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(owned.NotOurs, match="is a symlink, not the grader's folder"):
        owned.own_dir(tmp_path / "link")
    (tmp_path / "open").mkdir()
    os.chmod(tmp_path / "open", 0o777)
    with pytest.raises(owned.NotOurs, match="writable by other users"):
        owned.own_dir(tmp_path / "open")


def test_a_lock_file_is_opened_without_following_a_link(tmp_path: Path) -> None:
    fd = owned.open_lock(tmp_path / "lock")
    os.close(fd)
    (tmp_path / "target").write_text("")
    (tmp_path / "planted").symlink_to(tmp_path / "target")
    with pytest.raises(OSError):  # O_NOFOLLOW: the link is not opened at all
        owned.open_lock(tmp_path / "planted")
