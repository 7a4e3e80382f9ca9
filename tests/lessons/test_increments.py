"""Each step differs from the previous one by its declared increment, and by nothing else."""

from __future__ import annotations

import filecmp
import itertools
from pathlib import Path

import pytest

from tests.support import ALL_STEPS, ROOT

IGNORED = {".venv", "__pycache__", ".server.log", ".pytest_cache"}

# What each step adds or changes, as its README's "What is new" says.
INCREMENTS: dict[str, dict[str, set[str]]] = {
    "02-pipeline": {"changed": {"README.md", "train.py", "predict.py"}, "added": set()},
    "03-fastapi": {"changed": {"README.md", "predict.py"}, "added": {"client.py"}},
    "04-pydantic": {"changed": {"README.md", "predict.py"}, "added": set()},
    "05-uv": {"changed": {"README.md"}, "added": {"pyproject.toml", "uv.lock", ".python-version"}},
    "06-docker": {"changed": {"README.md"}, "added": {"Dockerfile", ".dockerignore"}},
    "07-flyio": {"changed": {"README.md"}, "added": {"fly.toml"}},
    "08-hardening": {"changed": {"README.md", "predict.py"}, "added": set()},
    "09-onnx": {
        # how the model is exported, loaded and scored; the dependency groups; the image
        "changed": {"README.md", "train.py", "predict.py", "Dockerfile", ".dockerignore"}
        | {"pyproject.toml", "uv.lock"},
        "added": set(),
    },
}


def files(folder: Path) -> set[str]:
    return {
        str(p.relative_to(folder))
        for p in folder.rglob("*")
        if p.is_file()
        and not IGNORED.intersection(p.relative_to(folder).parts)
        and p.suffix not in (".bin", ".onnx")  # trained models, written by train.py
    }


PAIRS = list(itertools.pairwise(ALL_STEPS))


@pytest.mark.parametrize(("previous", "step"), PAIRS, ids=[b for _, b in PAIRS])
def test_step_differs_only_by_its_increment(previous: str, step: str) -> None:
    before, after = files(ROOT / previous), files(ROOT / step)
    added = after - before
    removed = before - after
    changed = {
        f
        for f in before & after
        if not filecmp.cmp(ROOT / previous / f, ROOT / step / f, shallow=False)
    }
    expected = INCREMENTS[step]
    assert not removed, f"{step} drops {sorted(removed)} that {previous} has"
    assert added == expected["added"], (
        f"{step} adds {sorted(added)}, declared {sorted(expected['added'])}"
    )
    assert changed == expected["changed"], (
        f"{step} changes {sorted(changed)} relative to {previous}; its declared increment is "
        f"{sorted(expected['changed'])}"
    )


def test_first_step_is_the_smallest() -> None:
    assert files(ROOT / "01-train") == {"README.md", "train.py", "predict.py"}


# A lesson file is read line by line: these steps' services stay as short as the course's.
LINE_LIMITS = {"03-fastapi": 50, "04-pydantic": 90, "05-uv": 90, "06-docker": 90, "07-flyio": 90}


@pytest.mark.parametrize(("step", "limit"), LINE_LIMITS.items(), ids=list(LINE_LIMITS))
def test_service_file_stays_short(step: str, limit: int) -> None:
    lines = len((ROOT / step / "predict.py").read_text().splitlines())
    assert lines <= limit, f"{step}/predict.py has {lines} lines; the lesson keeps it to {limit}"
