"""Tools for the service's reliability tests: a trained copy of a step, a server, a load client.

Used by tests/service/ (fuzzing, load, faults, hardening) and by tests/hostile. All traffic goes
to 127.0.0.1 only; every loop is bounded in count and in time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import shutil
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.support import (
    EXAMPLE_CUSTOMER,
    HARDENED_STEP,
    copy_step,
    dataset,
    free_port,
    python,
    server,
    uvicorn_cmd,
)

# The service the reliability tests attack: step 08, the hardened one.
FINAL_STEP = HARDENED_STEP
FULL = os.environ.get("FULL", "") not in ("", "0")

_trained: dict[str, Path] = {}


def trained_step(step: str, dest: Path) -> Path:
    """A scratch copy of a step with its trained models; train.py runs once per session and step."""
    target = copy_step(step, dest)
    cached = _trained.get(step)
    if cached is None or not (cached / "pipeline.bin").is_file():
        env = dict(os.environ, CHURN_DATA=str(dataset("CHURN_DATA")))
        cmd = [python(), "train.py"]
        subprocess.run(cmd, cwd=target, env=env, check=True, capture_output=True, timeout=300)
        _trained[step] = target
    else:
        for model in cached.glob("*.bin"):
            shutil.copy2(model, target / model.name)
    return target


@contextlib.contextmanager
def service(folder: Path) -> Iterator[str]:
    """Run `uvicorn predict:app` in folder on a free loopback port; yield its base URL."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with server(uvicorn_cmd(port), folder, f"{base}/ping", timeout=90):
        yield base


def predict_body(customer: dict[str, object] | None = None) -> bytes:
    return json.dumps(customer or EXAMPLE_CUSTOMER).encode()


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) by the nearest-rank method."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass
class LoadResult:
    """What a load run saw: per-request latencies (s), status counts and errors by kind."""

    requests: int = 0
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    # (time sent, time answered or failed) of each request, for the SIGTERM test
    timeline: list[tuple[float, float, str]] = field(default_factory=list)

    @property
    def ok(self) -> int:
        return self.statuses.get(200, 0)

    def summary(self) -> str:
        p50 = percentile(self.latencies, 50) * 1000
        p99 = percentile(self.latencies, 99) * 1000
        worst = max(self.latencies, default=0.0) * 1000
        rate = self.requests / self.seconds if self.seconds else 0.0
        return (
            f"{self.requests} requests in {self.seconds:.1f} s ({rate:.0f}/s): "
            f"statuses {dict(self.statuses)}, errors {dict(self.errors) or 0}, "
            f"p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {worst:.0f} ms"
        )


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """One HTTP/1.1 response with Content-Length; returns (status, body, keep_alive)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return status, body, headers.get("connection", "").lower() != "close"


async def _client(
    host: str,
    port: int,
    request: bytes,
    budget: list[int],
    result: LoadResult,
    deadline: float,
    stop: threading.Event | None,
) -> None:
    """One client: one keep-alive connection, a request after another until the budget is spent."""
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    try:
        while budget[0] > 0 and time.monotonic() < deadline and not (stop and stop.is_set()):
            budget[0] -= 1
            sent = time.monotonic()
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection(host, port)
                assert reader is not None
                writer.write(request)
                await writer.drain()
                status, _, keep_alive = await asyncio.wait_for(_read_response(reader), 30)
            except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as e:
                result.requests += 1
                kind = type(e).__name__
                result.errors[kind] += 1
                result.timeline.append((sent, time.monotonic(), kind))
                if writer is not None:
                    writer.close()
                reader = writer = None
                await asyncio.sleep(0.01)
                continue
            done = time.monotonic()
            result.requests += 1
            result.statuses[status] += 1
            result.latencies.append(done - sent)
            result.timeline.append((sent, done, str(status)))
            if not keep_alive:
                assert writer is not None
                writer.close()
                reader = writer = None
    finally:
        if writer is not None:
            writer.close()


def http_request(path: str, body: bytes, host: str = "127.0.0.1", port: int = 80) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def run_load(
    base: str,
    clients: int,
    requests: int,
    path: str = "/predict",
    body: bytes | None = None,
    max_seconds: float = 300.0,
    stop: threading.Event | None = None,
) -> LoadResult:
    """`clients` concurrent keep-alive clients share `requests` POSTs to base+path (loopback).

    Bounded: it ends when the requests are spent, after max_seconds, or when stop is set.
    """
    host, port_text = base.removeprefix("http://").split(":")
    port = int(port_text)
    assert host.startswith("127."), "load goes to loopback only"
    request = http_request(path, body or predict_body(), host, port)
    result = LoadResult()

    async def main() -> None:
        budget = [requests]
        deadline = time.monotonic() + max_seconds
        await asyncio.gather(
            *(_client(host, port, request, budget, result, deadline, stop) for _ in range(clients))
        )

    start = time.monotonic()
    asyncio.run(main())
    result.seconds = time.monotonic() - start
    return result
