"""Latency and throughput: 07 and 08 (pickle), 09 (ONNX) and Flask + gunicorn, side by side.

Used by bench/run.py. Every server runs at once on 127.0.0.1 (one worker each, its own port) and
they are driven in turn with wrk (Debian package `wrk`, one thread, 8 connections): a warm-up,
then rounds of short runs, interleaved so that a busy moment on the machine hits all alike.
"""

from __future__ import annotations

import contextlib
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path

from bench.harness import CUSTOMER, Result, free_port, gunicorn, running, uvicorn
from bench.harness import wrk as drive

BATCH = 1000  # customers per /predict_batch request: the service's maximum
Request = tuple[str, object]  # (path, JSON body or None for GET)
PREDICT: Request = ("/predict", CUSTOMER)
PING: Request = ("/ping", None)
PREDICT_BATCH: Request = ("/predict_batch", [CUSTOMER] * BATCH)
FLASK = "Flask + gunicorn"

# (label, step whose trained folder it runs in, uvicorn or gunicorn, requests)
SERVERS: list[tuple[str, str, str, list[Request]]] = [
    ("07 (pickle)", "07", "uvicorn", [PREDICT, PING]),
    ("08 (pickle, hardened)", "08", "uvicorn", [PREDICT, PING, PREDICT_BATCH]),
    ("09 (ONNX)", "09", "uvicorn", [PREDICT, PING, PREDICT_BATCH]),
    # The course's previous way, serving 07's pipeline.bin, without validation.
    (FLASK, "07", "gunicorn", [PREDICT, PING]),
]


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
        return BATCH if self.path == "/predict_batch" else 1

    def median(self) -> Result:
        return Result(
            *(
                statistics.median(getattr(r, name) for r in self.runs)
                for name in ("requests_per_s", "p50_ms", "p99_ms", "cpu_ms")
            )
        )


def measure(
    steps: dict[str, Path], env: dict[str, str], workdir: Path, rounds: int, seconds: int
) -> list[Probe]:
    with contextlib.ExitStack() as stack:
        probes = []
        for label, step, kind, requests in SERVERS:
            port = free_port()
            cmd = uvicorn(port) if kind == "uvicorn" else gunicorn(port)
            proc = stack.enter_context(running(cmd, steps[step], port, env=env))
            probes += [Probe(label, path, body, port, proc.pid) for path, body in requests]

        # Warm-up, as long as a round: a batch of 1,000 takes ~0.3 s of CPU, more on a busy machine.
        for probe in probes if rounds > 1 else ():
            drive(probe.port, probe.path, probe.body, seconds, workdir)
        for i in range(rounds):
            print(f"  throughput, round {i + 1}/{rounds}", file=sys.stderr, flush=True)
            for probe in probes:
                result = drive(probe.port, probe.path, probe.body, seconds, workdir, probe.session)
                probe.runs.append(result)
    return probes


def table(probes: list[Probe]) -> str:
    """One row per server and request; ratios by requests/s and by CPU time per request."""
    medians = {(p.server, p.path): p.median() for p in probes}
    base = SERVERS[0][0]

    def ratio(m: Result, other: Result | None) -> str:
        if other is None:
            return ""
        return f"{m.requests_per_s / other.requests_per_s:.2f}× / {other.cpu_ms / m.cpu_ms:.2f}×"

    lines = [
        "| server | request | requests/s | records/s | p50 ms | p99 ms | CPU ms/request "
        "| ÷ 07 (req/s / CPU) | ÷ Flask (req/s / CPU) | ÷ own /ping (req/s / CPU) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for p in probes:
        m = medians[p.server, p.path]
        vs_base = ratio(m, medians.get((base, p.path)))
        vs_flask = vs_ping = ""
        if p.path == "/predict":
            vs_flask = ratio(m, medians.get((FLASK, "/predict")))
            vs_ping = ratio(m, medians.get((p.server, "/ping")))
        lines.append(
            f"| {p.server} | {p.path} | {m.requests_per_s:,.0f} | "
            f"{m.requests_per_s * p.records:,.0f} | {m.p50_ms:.2f} | {m.p99_ms:.2f} | "
            f"{m.cpu_ms:.2f} | {vs_base} | {vs_flask} | {vs_ping} |"
        )
    return "\n".join(lines)
