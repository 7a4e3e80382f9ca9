"""The engine commands of one run, as argument lists (tested alone)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from grader.containers.engine import DATA_BYTES, FILE_BYTES, NPROC, Engine

NETWORK = "slirp4netns:allow_host_loopback=false"  # rootless podman: no way to the host's 127.0.0.1


def storage(engine: Engine, root: Path, stores: Sequence[Path] = ()) -> list[str]:
    """podman's storage options: a storage under `root`, the base images and `stores` (the
    dependency store) as read-only image stores; nothing for docker."""
    if engine.name != "podman":
        return []
    args = ["--root", str(root / "storage"), "--runroot", str(root / "r")]
    images = [engine.store, *(str(s / "storage") for s in stores)]
    if engine.driver:
        args += ["--storage-driver", engine.driver]
        if any(images):
            args += [
                "--storage-opt",
                f"{engine.driver}.imagestore={','.join(filter(None, images))}",
            ]
    return args


def limits(engine: Engine) -> list[str]:
    """What every build and container of a run gets: ulimits, and (podman) no proxy variables;
    docker reads proxies from its client configuration, which the run's own empty one lacks."""
    proxy = ["--http-proxy=false"] if engine.name == "podman" else []
    return [
        *proxy,
        f"--ulimit=nproc={NPROC}:{NPROC}",
        f"--ulimit=data={DATA_BYTES}:{DATA_BYTES}",
        f"--ulimit=fsize={FILE_BYTES}:{FILE_BYTES}",
    ]


# A container of a docker daemon: no capability, no privilege gained on exec, cgroup limits.
DOCKER_RUN = [
    "--cap-drop=ALL",
    "--security-opt=no-new-privileges",
    "--pids-limit=4096",
    "--memory=4g",
]


@dataclass(frozen=True)
class Commands:
    """The commands of one run: build the dependency steps, build the image (from the shared
    dependency layers, or fresh), measure it, run it."""

    deps: list[str]
    shared: list[str]
    fresh: list[str]
    inspect: list[str]
    run: list[str]

    def by_name(self) -> dict[str, list[str]]:
        return {
            "deps": self.deps,
            "shared": self.shared,
            "fresh": self.fresh,
            "inspect": self.inspect,
            "run": self.run,
        }


def commands(
    engine: Engine,
    folder: Path,
    run_id: str,
    port: int,
    host_port: int,
    store: Path | None,
    fill_store: bool,
) -> Commands:
    """The run's commands; `store`: the dependency store it reads (or fills, `fill_store`)."""
    e, tag = engine, f"localhost/grader-{run_id}"
    common, label = limits(e), [f"--label=grader.run={run_id}"]
    deps: list[str] = []
    if store is not None and fill_store:
        deps = [e.path, *storage(e, store), "build", "--layers", *common]
        deps += ["-f", str(folder / "deps.Dockerfile"), "-t", f"localhost/grader-{store.name}"]
        deps.append(str(folder / "deps-context"))
    # "shared": the dependency steps come from their read-only store (--layers finds them
    # there, and nothing else: the run's own storage starts empty); "fresh": no cache.
    own = storage(e, folder, [store] if store is not None else [])
    shared = [e.path, *own, "build", "--layers", *common, *label, "-t", tag]
    fresh = [e.path, *storage(e, folder), "build", "--no-cache", *common, *label, "-t", tag]
    if e.name == "podman":
        fresh.insert(fresh.index("--no-cache") + 1, "--layers=false")
    shared.append(str(folder / "context"))
    fresh.append(str(folder / "context"))
    inspect = [e.path, *own, "image", "inspect", "--format", "{{.Size}}", tag]
    network = [f"--network={NETWORK}"] if e.name == "podman" else DOCKER_RUN
    run = [e.path, *own, "run", "--rm", "--name", f"grader-{run_id}", *common, *label]
    run += [*network, "-p", f"127.0.0.1:{host_port}:{port}", tag]
    return Commands(deps, shared, fresh, inspect, run)
