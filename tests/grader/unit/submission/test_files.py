"""grader/submission/files.py: bounded readers of submitted files."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.submission import files


def test_a_file_is_read_up_to_its_cap(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text("print(1)\n")
    assert files.submitted(tmp_path, "train.py") == tmp_path / "train.py"
    assert files.submitted(tmp_path, "predict.py") is None
    assert files.read_text(tmp_path / "train.py") == "print(1)\n"
    (tmp_path / "big.py").write_bytes(b"x" * 2000)
    with pytest.raises(files.FileProblem, match=r"big.py is 2 kB; the grader reads files of up"):
        files.read_bytes(tmp_path / "big.py", limit_bytes=1000)


def test_links_out_and_folders_are_refused(tmp_path: Path) -> None:
    sub = tmp_path / "sub"
    sub.mkdir()
    (tmp_path / "secret").write_text("s")
    (sub / "model.bin").symlink_to(tmp_path / "secret")
    with pytest.raises(files.FileProblem, match="symlink to a file outside your submission"):
        files.submitted(sub, "model.bin")
    with pytest.raises(files.FileProblem, match="outside your submission"):
        files.read_bytes(sub / "model.bin")
    (sub / "uv.lock").mkdir()
    with pytest.raises(files.FileProblem, match="not a regular file"):
        files.submitted(sub, "uv.lock")


def test_toml_that_cannot_be_read_says_why(tmp_path: Path) -> None:
    (tmp_path / "fly.toml").write_text('app = "x"\n')
    assert files.read_toml(tmp_path / "fly.toml") == {"app": "x"}
    (tmp_path / "fly.toml").write_text("app = \n")
    with pytest.raises(files.FileProblem, match=r"fly\.toml is not valid TOML"):
        files.read_toml(tmp_path / "fly.toml")
    (tmp_path / "fly.toml").write_text("a = " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(files.FileProblem, match="nests arrays or tables too deeply"):
        files.read_toml(tmp_path / "fly.toml")
