"""grader/containers/commands.py: the engine's argument lists for one run."""

from __future__ import annotations

from pathlib import Path

from grader.containers.commands import DOCKER_RUN, NETWORK, commands, limits, storage
from grader.containers.engine import Engine

PODMAN = Engine("podman", "/usr/bin/podman", "4.3.1", driver="vfs", store="/var/lib/base")
DOCKER = Engine("docker", "/usr/bin/docker", "20.10")


def test_podman_runs_in_a_storage_of_its_own_with_read_only_stores(tmp_path: Path) -> None:
    store = tmp_path / "store"
    run = commands(PODMAN, tmp_path, "abc", 9696, 40000, store, fill_store=True)
    assert all(isinstance(a, str) for argv in run.by_name().values() for a in argv)
    assert run.deps[:2] == ["/usr/bin/podman", "--root"] and run.deps[-1].endswith("deps-context")
    assert run.shared[run.shared.index("--root") + 1] == str(tmp_path / "storage")
    assert f"vfs.imagestore=/var/lib/base,{store / 'storage'}" in run.shared
    assert "--no-cache" in run.fresh and "--layers=false" in run.fresh
    assert run.fresh[-1] == run.shared[-1] == str(tmp_path / "context")
    assert f"--network={NETWORK}" in run.run and "--http-proxy=false" in run.run
    assert run.run[-3:] == ["-p", "127.0.0.1:40000:9696", "localhost/grader-abc"]
    assert run.inspect[-1] == "localhost/grader-abc" and "--label=grader.run=abc" in run.run


def test_docker_gets_no_storage_options_and_a_confined_container(tmp_path: Path) -> None:
    run = commands(DOCKER, tmp_path, "abc", 9696, 40000, None, fill_store=False)
    assert run.deps == [] and storage(DOCKER, tmp_path) == []
    assert "--root" not in run.shared and "--layers=false" not in run.fresh
    assert all(flag in run.run for flag in DOCKER_RUN)
    assert "--http-proxy=false" not in limits(DOCKER)
    assert [a for a in limits(DOCKER) if a.startswith("--ulimit=")] == [
        a for a in limits(PODMAN) if a.startswith("--ulimit=")
    ]
