"""Cold start: process start → first 200 of POST /predict, as after fly.io wakes a stopped machine.

Run:  uv run python bench/coldstart.py [--quick] [--container] [--repeat N]
Locally, with and without compiled bytecode (each run gets its own PYTHONPYCACHEPREFIX: a warm one
filled by a first run, or an empty one that it may not write, as a non-root user in an image without
.pyc files), and with the model loaded lazily; the same for the optional fast path. --container also
builds 06-docker's image (with UV_COMPILE_BYTECODE=1 as written, and without) and times `run`.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.harness import (
    CUSTOMER,
    ROOT,
    die_with_parent,
    first_ok,
    free_port,
    prepare,
    stop,
    uvicorn,
    workspace,
)

QUICK = {"lesson, local, compiled", "fast path, local, compiled", "fast path, local, not compiled"}
ENGINE_SCRIPT = ROOT.parent / "shared" / "ci" / "container-engine.sh"
IMAGES = ["python:3.13-slim-bookworm", "ghcr.io/astral-sh/uv:0.13.9"]


def lazy_model(source: str) -> str:
    """The lesson's predict.py, but the pipeline (and with it scikit-learn) loads on first use."""
    if "pipeline = load_model(MODEL_FILE)\n" not in source:
        raise RuntimeError("predict.py no longer loads its model with load_model(MODEL_FILE)")
    source = source.replace(
        "pipeline = load_model(MODEL_FILE)\n",
        "@functools.cache\ndef model():\n    return load_model(MODEL_FILE)\n",
    ).replace("pipeline.predict_proba", "model().predict_proba")
    return "import functools\n" + source


@dataclass
class Case:
    name: str
    cmd: Callable[[int], list[str]]  # port → command
    env: Callable[[int], dict[str, str]]  # run number → environment
    stop: Callable[[], None] = lambda: None
    seconds: list[float] = field(default_factory=list)


def pycache(tmp: Path, compiled: bool) -> Callable[[int], dict[str, str]]:
    """Environments whose bytecode cache is shared and writable, or new, empty and read-only."""
    base = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}

    def env(run: int) -> dict[str, str]:
        if compiled:
            return {**base, "PYTHONPYCACHEPREFIX": str(tmp / "pyc-warm")}
        return {
            **base,
            "PYTHONPYCACHEPREFIX": str(tmp / f"pyc-{run}"),
            "PYTHONDONTWRITEBYTECODE": "1",
        }

    return env


def local_case(
    name: str, module: str, env_of: Callable[[int], dict[str, str]], extra: dict[str, str]
) -> Case:
    def cmd(port: int) -> list[str]:
        return uvicorn(module, port)

    def env(run: int) -> dict[str, str]:
        return {**env_of(run), **extra}

    return Case(name, cmd, env)


def time_to_first_predict(case: Case, cwd: Path, run: int) -> float:
    port = free_port()
    start = time.monotonic()
    proc = subprocess.Popen(
        case.cmd(port), cwd=cwd, env=case.env(run), start_new_session=True,
        preexec_fn=die_with_parent, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        return first_ok(port, "POST", "/predict", CUSTOMER, proc, timeout=300) - start
    finally:
        stop(proc)
        case.stop()


def engine() -> str:
    out = subprocess.run(["bash", str(ENGINE_SCRIPT), *IMAGES], capture_output=True, text=True)
    if out.returncode:
        sys.exit(f"no container engine: {out.stderr[-2000:]}")
    return out.stdout.strip().splitlines()[-1]


def container_cases(tmp: Path, service: Path) -> list[Case]:
    tool = engine()
    context = tmp / "image"
    shutil.copytree(ROOT / "06-docker", context, ignore=shutil.ignore_patterns(".venv", "*.bin"))
    shutil.copy(service / "pipeline.bin", context)
    cases = []
    for label, compile_flag in (("compiled", "1"), ("not compiled", "0")):
        tag = f"localhost/bench-churn-{compile_flag}"
        dockerfile = (ROOT / "06-docker" / "Dockerfile").read_text()
        dockerfile, n = re.subn(r"UV_COMPILE_BYTECODE=1", f"UV_COMPILE_BYTECODE={compile_flag}",
                                dockerfile)  # fmt: skip
        assert n == 1, "06-docker/Dockerfile no longer sets UV_COMPILE_BYTECODE=1"
        (context / "Dockerfile.bench").write_text(dockerfile)
        subprocess.run([tool, "build", "-q", "-f", "Dockerfile.bench", "-t", tag, "."],
                       cwd=context, check=True, stdout=subprocess.DEVNULL)  # fmt: skip
        name = f"bench-cold-{compile_flag}"

        def cmd(port: int, tag: str = tag, name: str = name) -> list[str]:
            return [tool, "run", "--rm", "--name", name, "-p", f"127.0.0.1:{port}:9696", tag]

        def remove(name: str = name) -> None:
            subprocess.run([tool, "rm", "-f", "-t", "0", name], capture_output=True)

        cases.append(Case(f"lesson, container, {label}", cmd, lambda run: dict(os.environ), remove))
    return cases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one run of a few cases (CI)")
    parser.add_argument("--trained", type=Path, help="take pipeline.bin from here, do not train")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--container", action="store_true", help="also time 06-docker's image")
    args = parser.parse_args()
    repeat = 1 if args.quick else args.repeat

    with workspace() as tmp:
        service = prepare(tmp, args.trained)
        (service / "predict_lazy.py").write_text(lazy_model((service / "predict.py").read_text()))
        subprocess.run([sys.executable, "-m", "bench.fastpath.export"], cwd=service, check=True,
                       stdout=subprocess.DEVNULL)  # fmt: skip
        fast_env = {"FASTPATH_WEIGHTS": str(service / "weights.json")}
        cases = []
        for label, module in (("lesson", "predict:app"), ("lesson, lazy model", "predict_lazy:app"),
                              ("fast path", "bench.fastpath.app:app")):  # fmt: skip
            for compiled in (True, False):
                name = f"{label}, local, {'compiled' if compiled else 'not compiled'}"
                cases.append(local_case(name, module, pycache(tmp, compiled), fast_env))
        if args.quick:
            cases = [c for c in cases if c.name in QUICK]
        if args.container:
            cases += container_cases(tmp, service)

        for case in cases:  # a first, untimed run fills the warm bytecode cache and the page cache
            time_to_first_predict(case, service, run=-1)
        for run in range(repeat):  # interleaved, so that a busy moment hits every case alike
            for case in cases:
                case.seconds.append(time_to_first_predict(case, service, run))
                print(f"  {case.name}: {case.seconds[-1]:.2f} s", file=sys.stderr, flush=True)

    lesson = statistics.median(cases[0].seconds)
    print("| process start → first 200 of POST /predict | median s | min s | ÷ lesson |")
    print("|---|---:|---:|---:|")
    for case in cases:
        median = statistics.median(case.seconds)
        print(f"| {case.name} | {median:.2f} | {min(case.seconds):.2f} | {median / lesson:.2f}× |")
    print(f"\n{repeat} run(s) per case after one untimed run; {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
