"""Cold start and footprint: process start → first 200 of POST /predict, as after fly.io wakes a
stopped machine; resident memory after that answer (locally: the server's processes; in the
container: its process 1, uvicorn); image size added over the base image.

Used by bench/run.py. Locally each step's `uvicorn predict:app` runs with its packages compiled
to bytecode (a shared PYTHONPYCACHEPREFIX, filled by an untimed first run), as in the images,
which compile them at build time (UV_COMPILE_BYTECODE=1). In the container: each step's own
Dockerfile, built as it is, started with `run`.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.harness import CUSTOMER, ROOT, first_ok, free_port, rss_mb, start, stop, uvicorn

ENGINE_SCRIPT = ROOT.parent / "shared" / "ci" / "container-engine.sh"
BASE_IMAGE = "python:3.13-slim-bookworm"  # the FROM of every step's Dockerfile
IMAGES = [BASE_IMAGE, "ghcr.io/astral-sh/uv:0.13.9"]


@dataclass
class Case:
    step: str  # "07", "08", "09"
    where: str  # "local" or "container"
    cmd: Callable[[int], list[str]]  # port → command
    cwd: Path
    env: dict[str, str] | None
    cleanup: Callable[[], None] = lambda: None
    probe: tuple[str, str, object] = ("POST", "/predict", CUSTOMER)  # what must answer 200
    seconds: list[float] = field(default_factory=list)
    rss: list[float] = field(default_factory=list)  # MB
    status_cmd: list[str] | None = None  # in a container: prints /proc/1/status

    @property
    def name(self) -> str:
        return f"{self.step}, {self.where}"


def local_cases(steps: dict[str, Path], env: dict[str, str]) -> list[Case]:
    return [Case(step, "local", uvicorn, folder, env) for step, folder in steps.items()]


def time_to_first_predict(case: Case) -> None:
    """One cold start: its seconds (and, locally, the server's resident memory) are recorded."""
    port = free_port()
    began = time.monotonic()
    proc = start(case.cmd(port), case.cwd, case.env)
    try:
        method, path, body = case.probe
        case.seconds.append(first_ok(port, method, path, body, proc, 300) - began)
        if case.where == "local":
            case.rss.append(rss_mb(proc.pid))
        elif case.status_cmd is not None:
            case.rss.append(container_rss_mb(case.status_cmd))
    finally:
        stop(proc)
        case.cleanup()


def container_rss_mb(status_cmd: list[str]) -> float:
    """VmRSS of the container's process 1 (uvicorn, started by the exec-form CMD), in MB."""
    out = subprocess.run(status_cmd, capture_output=True, text=True, check=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("VmRSS:"))
    return int(line.split()[1]) / 1000


def engine() -> str:
    """docker or podman, prepared by ../shared/ci/container-engine.sh where it exists."""
    if not ENGINE_SCRIPT.exists():
        return "docker"
    out = subprocess.run(["bash", str(ENGINE_SCRIPT), *IMAGES], capture_output=True, text=True)
    if out.returncode:
        sys.exit(f"no container engine: {out.stderr[-2000:]}")
    return out.stdout.strip().splitlines()[-1]


def image_size_mb(tool: str, image: str) -> float:
    out = subprocess.run([tool, "image", "inspect", image], capture_output=True, text=True,
                         check=True)  # fmt: skip
    return float(json.loads(out.stdout)[0]["Size"]) / 1e6


def container_cases(tool: str, steps: dict[str, Path]) -> tuple[list[Case], dict[str, float]]:
    """Each step's image, built from its trained folder; the MB each adds over the base image."""
    cases, added = [], {}
    base = image_size_mb(tool, BASE_IMAGE)
    for step, folder in steps.items():
        tag = f"localhost/bench-churn-{step}"
        print(f"  building {folder.name}'s image", file=sys.stderr, flush=True)
        built = subprocess.run([tool, "build", "-q", "-t", tag, "."], cwd=folder,
                               capture_output=True, text=True)  # fmt: skip
        if built.returncode:
            sys.exit(f"{tool} build of {folder.name} failed:\n{built.stderr[-3000:]}")
        added[step] = image_size_mb(tool, tag) - base
        name = f"bench-cold-{step}"

        def cmd(port: int, tag: str = tag, name: str = name) -> list[str]:
            return [tool, "run", "--rm", "--name", name, "-p", f"127.0.0.1:{port}:9696", tag]

        def remove(name: str = name) -> None:
            subprocess.run([tool, "rm", "-f", name], capture_output=True)

        status = [tool, "exec", name, "cat", "/proc/1/status"]
        cases.append(Case(step, "container", cmd, folder, None, remove, status_cmd=status))
    # The floor: what starting any container costs here, the base image serving GET / with
    # Python's own http.server (no packages to import, no model to load).
    name = "bench-cold-floor"

    def floor_cmd(port: int) -> list[str]:
        publish = f"127.0.0.1:{port}:9696"
        return [tool, "run", "--rm", "--name", name, "-p", publish, BASE_IMAGE,
                "python", "-m", "http.server", "9696"]  # fmt: skip

    def floor_remove() -> None:
        subprocess.run([tool, "rm", "-f", name], capture_output=True)

    floor = Case("base image, `python -m http.server`", "container", floor_cmd, ROOT, None,
                 floor_remove, ("GET", "/", None))  # fmt: skip
    return [*cases, floor], added


def measure(cases: list[Case], repeat: int) -> None:
    for case in cases:  # a first, untimed run fills the bytecode cache and the page cache
        time_to_first_predict(case)
        case.seconds.clear()
        case.rss.clear()
    for run in range(repeat):  # interleaved, so that a busy moment hits every case alike
        for case in cases:
            time_to_first_predict(case)
            print(f"  cold start {case.name}, run {run + 1}/{repeat}: {case.seconds[-1]:.2f} s",
                  file=sys.stderr, flush=True)  # fmt: skip


def table(cases: list[Case], added: dict[str, float]) -> str:
    """Median and fastest cold start, memory and image size, each as a ratio to 07's."""
    by_name = {c.name: c for c in cases}
    lines = [
        "| step | where | cold start, median s | min s | ÷ 07 | resident memory MB | ÷ 07 "
        "| image adds MB | ÷ 07 |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for case in cases:
        base = by_name[f"07, {case.where}"]
        median = statistics.median(case.seconds)
        row = (f"| {case.step} | {case.where} | {median:.2f} | {min(case.seconds):.2f} | "
               f"{median / statistics.median(base.seconds):.2f}× |")  # fmt: skip
        if case.rss:
            rss = statistics.median(case.rss)
            row += f" {rss:.0f} | {rss / statistics.median(base.rss):.2f}× |"
        else:
            row += " | |"
        if case.where == "container" and case.step in added:
            row += f" {added[case.step]:.0f} | {added[case.step] / added['07']:.2f}× |"
        else:
            row += " | |"
        lines.append(row)
    return "\n".join(lines)
