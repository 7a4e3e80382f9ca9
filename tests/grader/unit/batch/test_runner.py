"""grader/batch/runner.py: shards and the students' redaction."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.batch import runner
from grader.results.report import parse_check_id


def test_parse_check_id_and_shard() -> None:
    assert parse_check_id("3.50") == (3, 50) and parse_check_id("1.5") < parse_check_id("1.50")
    for bad in ("3", "a.b", "3.2.1", "0.1x"):
        with pytest.raises(ValueError, match=r"STAGE\.N"):
            parse_check_id(bad)
    assert runner.parse_shard("2/4") == (2, 4)
    for bad in ("0/2", "3/2", "1", "a/b"):
        with pytest.raises(Exception, match="shard"):
            runner.parse_shard(bad)


def test_shards_partition_the_cohort(tmp_path: Path) -> None:
    names = [tmp_path / f"s{i:02d}" for i in range(11)]
    parts = [runner.shard_of(names, (i, 3)) for i in (1, 2, 3)]
    assert sorted(p for part in parts for p in part) == names
    assert max(map(len, parts)) - min(map(len, parts)) <= 1
