"""grader/sandbox/watchdog.py: what commands add to the scratch copy, measured."""

from __future__ import annotations

from pathlib import Path

from grader.sandbox.watchdog import disk_usage


def test_disk_usage_counts_bytes_and_entries_without_following_links(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "big").write_bytes(b"x" * 100_000)
    (tmp_path / "small").write_bytes(b"x")
    (tmp_path / "link").symlink_to("/usr")
    size, entries = disk_usage([tmp_path], 1000)
    assert entries == 4 and 100_001 <= size < 200_000
    assert disk_usage([tmp_path / "missing"], 1000) == (0, 0)


def test_disk_usage_stops_past_its_bound(tmp_path: Path) -> None:
    for i in range(50):
        (tmp_path / f"d{i}").mkdir()
        (tmp_path / f"d{i}" / "f").write_text("")
    _, entries = disk_usage([tmp_path], 10)
    assert 10 < entries < 100
