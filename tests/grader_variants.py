"""Submissions built from fixture folders: a copy of solutions/ (or a lesson) with a few files
of the fixture laid over it, so that a variant never edits the lines of the folder it copies.

tests/grader/fixtures/NAME/variant.toml says what the variant is:
  description = "..."        one line, for reports
  base = "solutions"         the folder it starts from (default solutions/; "" an empty one)
  delete = ["uv.lock"]       files the student did not submit
  cohort = false             not one of the cohort's realistic submissions
  pretrain = "base"          the student's own model.bin/pipeline.bin, written by the base's
                             train.py before the overlay ("locked": by the overlaid train.py in
                             the environment of the variant's uv.lock)
  [prepend] / [append]       "file" = "text": text put before / after a file of the base
  prepare = "python code"    run in the folder once it is laid out (what the student's own
                             tools wrote, e.g. a pickle)
  [repository]               the folder is `folder` inside a repository (named course) that
                             holds [repository.files]
Every other file of the fixture folder replaces (or adds) the file of that name.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path
from typing import Any

from tests.support import ROOT, data_env

FIXTURES = Path(__file__).resolve().parent / "grader" / "fixtures"


def meta(name: str) -> dict[str, Any]:
    return tomllib.loads((FIXTURES / name / "variant.toml").read_text())


VARIANTS = sorted(p.name for p in FIXTURES.iterdir() if (p / "variant.toml").is_file())
# The cohort: realistic homework submissions (`cohort = false`: narrower broken variants).
COHORT = [name for name in VARIANTS if meta(name).get("cohort", True)]


def _train(folder: Path, python: str) -> None:
    subprocess.run(
        [python, "train.py"],
        cwd=folder,
        env=data_env(),
        check=True,
        capture_output=True,
        timeout=600,
    )


def build(name: str, dest: Path) -> Path:
    """The submission of variant `name`, in dest/name (dest/course/FOLDER with [repository])."""
    info = meta(name)
    repository = info.get("repository")
    if repository:
        dest = dest / "course"
        dest.mkdir()
        for path, text in repository["files"].items():
            (dest / path).write_text(text)
    folder = dest / name
    base = str(info.get("base", "solutions"))
    if base:
        ignore = shutil.ignore_patterns(".venv", "__pycache__", "*.bin", ".server.log")
        shutil.copytree(ROOT / base, folder, ignore=ignore)
    else:
        folder.mkdir(parents=True)
    if info.get("pretrain") == "base":
        _train(folder, sys.executable)
    for path in (FIXTURES / name).iterdir():
        if path.name != "variant.toml":
            shutil.copy2(path, folder / path.name)
    for path, text in info.get("prepend", {}).items():
        (folder / path).write_text(text + (folder / path).read_text())
    for path, text in info.get("append", {}).items():
        (folder / path).write_text((folder / path).read_text() + text)
    for gone in info.get("delete", []):
        (folder / gone).unlink()
    if "prepare" in info:
        subprocess.run([sys.executable, "-c", info["prepare"]], cwd=folder, check=True)
    if info.get("pretrain") == "locked":
        from grader.environment import install, real_uv

        scratch = Path(tempfile.mkdtemp(prefix="variant-env-", dir=dest))
        env = install(folder, real_uv(), shared=False, scratch=scratch)
        assert env.python is not None, env.problem
        _train(folder, str(env.python))
        shutil.rmtree(scratch, ignore_errors=True)
    if repository:
        folder = folder.rename(dest / repository["folder"])
    return folder
