"""grader/uploads.py: the one rule that finds the submission in an upload."""

from __future__ import annotations

from pathlib import Path

from grader import uploads


def test_one_rule_finds_the_submission_in_an_upload(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    (plain / "old").mkdir(parents=True)
    (plain / "train.py").write_text("")
    (plain / "old" / "train.py").write_text("")
    assert uploads.locate(plain) == uploads.Located(plain, ".")

    mac = tmp_path / "mac"
    (mac / "__MACOSX" / "credit-card-hw").mkdir(parents=True)
    (mac / "__MACOSX" / "credit-card-hw" / "train.py").write_text("")
    (mac / "credit-card-hw").mkdir()
    (mac / "credit-card-hw" / "train.py").write_text("")
    found = uploads.locate(mac)
    assert (found.root, found.relative) == (mac / "credit-card-hw", "credit-card-hw")
    assert "credit-card-hw/" in found.notes[0]

    nothing = tmp_path / "zip-of-a-folder"
    (nothing / "hw" / "inner").mkdir(parents=True)
    (nothing / "hw" / "inner" / "predict.py").write_text("")
    assert uploads.locate(nothing).relative == "hw/inner"
    (tmp_path / "empty").mkdir()
    assert uploads.locate(tmp_path / "empty").relative == "."
