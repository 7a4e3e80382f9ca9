"""grader/containers/store.py: what a dependency store is keyed on, and its locks. (Builds
that fill and read a store need an engine: tests/hostile/test_attack_classes.py.)"""

from __future__ import annotations

import os
from pathlib import Path

from grader.containers import store
from grader.containers.engine import Engine
from grader.submission.dockerpolicy import DependencySteps

ENGINE = Engine("podman", "/usr/bin/podman", "4.3.1", driver="vfs", store="/nonexistent")
STEPS = DependencySteps("FROM python:3.13-slim-bookworm\nRUN uv sync --locked\n", ("uv.lock",))


def test_the_key_changes_with_every_input_of_the_dependency_steps(tmp_path: Path) -> None:
    (tmp_path / "uv.lock").write_text("version = 1\n")
    key = store.deps_key(tmp_path, STEPS, ENGINE)
    assert key is not None and key == store.deps_key(tmp_path, STEPS, ENGINE)
    other_text = DependencySteps(STEPS.text + "RUN true\n", STEPS.files)
    assert store.deps_key(tmp_path, other_text, ENGINE) != key
    (tmp_path / ".dockerignore").write_text("")
    assert store.deps_key(tmp_path, STEPS, ENGINE) != key, "an empty .dockerignore is not none"
    (tmp_path / ".dockerignore").unlink()
    os.chmod(tmp_path / "uv.lock", 0o755)
    assert store.deps_key(tmp_path, STEPS, ENGINE) != key, "modes are copied into the image"
    (tmp_path / "uv.lock").unlink()
    (tmp_path / "uv.lock").symlink_to("/etc/hostname")
    assert store.deps_key(tmp_path, STEPS, ENGINE) is None, "a link shares nothing"


def test_an_exclusive_lock_excludes_every_other(tmp_path: Path) -> None:
    folder = tmp_path / "deps-abc"
    first = store.flock(folder, shared=True)
    second = store.flock(folder, shared=True)
    assert first is not None and second is not None
    assert store.flock(folder, shared=False) is None
    os.close(first)
    os.close(second)
    held = store.lock(folder)
    assert store.flock(folder, shared=True) is None
    os.close(held)


def test_the_dockerfile_is_read_through_the_bounded_readers(tmp_path: Path) -> None:
    assert store.read_dockerfile(tmp_path) is None
    (tmp_path / "Dockerfile").write_text("FROM python:3.13-slim-bookworm\n")
    assert store.read_dockerfile(tmp_path) == "FROM python:3.13-slim-bookworm\n"
    (tmp_path / "Dockerfile").unlink()
    (tmp_path / "Dockerfile").symlink_to("/etc/hostname")
    assert store.read_dockerfile(tmp_path) is None
