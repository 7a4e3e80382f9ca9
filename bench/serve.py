"""Latency and throughput of the churn service, side by side, in one run on this machine.

Run:  uv run python bench/serve.py [--quick] [--rounds N] [--seconds S] [--json FILE]
Trains the final step (05-uv) into a temporary folder, starts every server at once on 127.0.0.1
(one worker each, each on its own port), then drives them in turn with wrk (Debian package `wrk`,
one thread, 8 connections): a warm-up, then several rounds of short runs, interleaved so that
a busy moment on the machine hits every server alike. Prints one Markdown table of the medians.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import statistics
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench.harness import CUSTOMER, ROOT, Result, free_port, prepare, running, uvicorn, workspace
from bench.harness import wrk as drive

BATCH = 1000  # customers per /predict_batch request: the lesson's maximum
Request = tuple[str, object]  # (path, JSON body or None for GET)
PREDICT: Request = ("/predict", CUSTOMER)
PING: Request = ("/ping", None)
PREDICT_BATCH: Request = ("/predict_batch", [CUSTOMER] * BATCH)
FLASK = "Flask + gunicorn"


def make_async(source: str) -> str:
    """The lesson's endpoints as `async def` (they then run on the event loop, not in a thread)."""
    return re.sub(r"^def (ping|predict|predict_batch)\(", r"async def \1(", source, flags=re.M)


def lean_sklearn(source: str) -> str:
    """scikit-learn without its per-call checks: finite-input scan and parameter validation."""
    config = (
        "import sklearn\n\n"
        "sklearn.set_config(assume_finite=True, skip_parameter_validation=True)\n\n"
    )
    return source.replace('MODEL_FILE = "pipeline.bin"', config + 'MODEL_FILE = "pipeline.bin"')


# name → how that copy of the lesson's predict.py differs from it
VARIANTS: dict[str, Callable[[str], str]] = {
    "async": make_async,
    "set_config": lean_sklearn,
    "async+set_config": lambda s: make_async(lean_sklearn(s)),
}


@dataclass
class Probe:
    server: str
    path: str
    body: object
    port: int
    session: int  # the server's session id, to read its CPU time
    runs: list[Result] = field(default_factory=list)

    @property
    def records(self) -> int:
        return len(self.body) if isinstance(self.body, list) else 1

    def median(self) -> Result:
        return Result(
            *(
                statistics.median(getattr(r, name) for r in self.runs)
                for name in ("requests_per_s", "p50_ms", "p99_ms", "cpu_ms")
            )
        )


def gunicorn(port: int) -> list[str]:
    """gunicorn's default: one sync worker, as the course ran it."""
    return [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}",
            "--workers", "1", "flask_app:app"]  # fmt: skip


Server = tuple[str, str | None, list[Request]]  # (label, uvicorn module or None, requests)


def servers(service: Path, variants: bool) -> list[Server]:
    """Every server to measure; writes the variants of predict.py into service/."""
    source = (service / "predict.py").read_text()
    found: list[Server] = [
        ("final (05-uv)", "predict:app", [PREDICT, PING, PREDICT_BATCH]),
        (FLASK, None, [PREDICT, PING]),
        ("fast path", "bench.fastpath.app:app", [PREDICT, PING, PREDICT_BATCH]),
    ]
    for name, change in VARIANTS.items() if variants else ():
        module = "v_" + name.replace("+", "_")
        patched = change(source)
        if patched == source:
            raise RuntimeError(f"variant {name} changed nothing in predict.py")
        (service / f"{module}.py").write_text(patched)
        found.append((f"lesson, {name}", f"{module}:app", [PREDICT, PING]))
    return found


def run(rounds: int, seconds: int, variants: bool, trained: Path | None) -> list[Probe]:
    with workspace() as tmp, contextlib.ExitStack() as stack:
        service = prepare(tmp, trained)
        subprocess.run(
            [sys.executable, "-m", "bench.fastpath.export", "pipeline.bin", "weights.json"],
            cwd=service, check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        (service / "flask_app.py").write_text((ROOT / "bench" / "flask_app.py").read_text())
        env = {"FASTPATH_WEIGHTS": str(service / "weights.json")}

        probes = []
        for label, module, requests in servers(service, variants):
            port = free_port()
            cmd = gunicorn(port) if module is None else uvicorn(module, port)
            proc = stack.enter_context(running(cmd, service, port, env=env))
            probes += [Probe(label, path, body, port, proc.pid) for path, body in requests]

        for probe in probes if rounds > 1 else ():
            drive(probe.port, probe.path, probe.body, 1, service)  # warm-up
        for i in range(rounds):
            print(f"  round {i + 1}/{rounds}", file=sys.stderr, flush=True)
            for probe in probes:
                result = drive(probe.port, probe.path, probe.body, seconds, service, probe.session)
                probe.runs.append(result)
    return probes


def table(probes: list[Probe]) -> str:
    """One row per server and request; ratios by requests/s and by CPU time per request."""
    medians = {(p.server, p.path): p.median() for p in probes}

    def ratio(m: Result, base: Result | None) -> str:
        if base is None:
            return ""
        return f"{m.requests_per_s / base.requests_per_s:.2f}× / {base.cpu_ms / m.cpu_ms:.2f}×"

    lines = [
        "| server | request | requests/s | records/s | p50 ms | p99 ms | CPU ms/request "
        "| ÷ Flask (req/s / CPU) | ÷ floor (req/s / CPU) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for p in probes:
        m = medians[p.server, p.path]
        vs_flask = vs_floor = ""
        if p.path == "/predict":
            if p.server != FLASK:
                vs_flask = ratio(m, medians.get((FLASK, "/predict")))
            vs_floor = ratio(m, medians.get((p.server, "/ping")))
        lines.append(
            f"| {p.server} | {p.path} | {m.requests_per_s:,.0f} | "
            f"{m.requests_per_s * p.records:,.0f} | {m.p50_ms:.2f} | {m.p99_ms:.2f} | "
            f"{m.cpu_ms:.2f} | {vs_flask} | {vs_floor} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="one 1-second round, no warm-up, no variants"
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=3, help="seconds per run")
    parser.add_argument("--json", type=Path, help="also write every run to this file")
    parser.add_argument("--trained", type=Path, help="take pipeline.bin from here, do not train")
    args = parser.parse_args()
    rounds, seconds = (1, 1) if args.quick else (args.rounds, args.seconds)

    probes = run(rounds, seconds, variants=not args.quick, trained=args.trained)
    print(table(probes))
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"\nmedians of {rounds} round(s) of {seconds} s per request, after a 1 s warm-up; "
        f"wrk 1 thread, 8 connections; /predict_batch = {BATCH} customers per request; "
        f"{os.cpu_count()} CPUs, load average {load}"
    )
    if args.json:
        rows = [{**asdict(p), "body": None, "median": asdict(p.median())} for p in probes]
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
