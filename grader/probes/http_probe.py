"""Start the submission's server, send it the grader's requests, report the answers as JSON.

Sandboxed use (a server in the sandbox is reachable only from inside it):
  stdin:  {"nonce": str, "server": [argv...], "port": int, "start_seconds": float,
           "requests": [{"id", "method", "path", "body"?, "raw"?}, ...]}
  stdout: `GRADER-RESULT <nonce> {"started": bool, "start_seconds": float, "exit_code": int|null,
           "server_log": str, "responses": [{"id", "status", "json"|"text"|"error"}, ...]}`
The grader also imports `run_requests` to probe a live deployment (`--url`), and probe.py
calls `probe()` with a server it forks instead of spawning one. Standard library
only: it runs with whatever interpreter the sandbox has and imports nothing from the grader.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import IO, Any, Protocol

MAX_BODY = 20_000  # characters of a body kept as text
MAX_JSON = 1_000_000  # bytes of a body read and parsed; a longer one is reported truncated
MAX_DRAIN = 8 * 1024**2  # bytes read past MAX_JSON to measure a body without Content-Length


def send(base_url: str, req: dict[str, Any], timeout: float = 15.0) -> dict[str, Any]:
    """One HTTP request; the answer as {"id", "status", "json" or "text"} or {"id", "error"}."""
    out: dict[str, Any] = {"id": req["id"]}
    data: bytes | None = None
    if "raw" in req:
        data = str(req["raw"]).encode()
    elif "body" in req:
        data = json.dumps(req["body"]).encode()
    request = urllib.request.Request(base_url.rstrip("/") + req["path"], data=data)
    request.method = req.get("method", "GET")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    started = time.monotonic()
    try:
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                status, raw, size = response.status, *_read(response)
        except urllib.error.HTTPError as e:
            status, raw, size = e.code, *_read(e)
    except (OSError, ValueError) as e:
        out["error"] = f"{type(e).__name__}: {e}"
        return out
    out["status"] = status
    out["seconds"] = round(time.monotonic() - started, 4)
    if size > len(raw):  # too long to keep: the start of it, and its length
        out["text"] = raw[:MAX_BODY].decode(errors="replace")
        out["bytes"] = size
        out["truncated"] = True
        return out
    try:
        out["json"] = json.loads(raw)
    except ValueError:
        out["text"] = raw[:MAX_BODY].decode(errors="replace")
        if len(raw) > MAX_BODY:
            out["bytes"] = len(raw)
    return out


def _read(response: Any) -> tuple[bytes, int]:
    """The first MAX_JSON bytes of a body, and its length (Content-Length, else counted up to
    MAX_DRAIN more bytes): a huge body never reaches the result whole."""
    raw: bytes = response.read(MAX_JSON + 1)
    if len(raw) <= MAX_JSON:
        return raw, len(raw)
    length = response.headers.get("Content-Length", "")
    if length.isdigit():
        return raw[:MAX_JSON], int(length)
    size = len(raw)
    while size < MAX_JSON + MAX_DRAIN and (chunk := response.read(1 << 16)):
        size += len(chunk)
    return raw[:MAX_JSON], size


def size_text(n: int) -> str:
    """A byte count for a person: "50 MB", "1.2 MB", "800 kB"."""
    if n >= 10**6:
        return f"{n / 10**6:.3g} MB"
    return f"{n / 1000:.3g} kB" if n >= 1000 else f"{n} bytes"


def run_requests(base_url: str, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [send(base_url, req) for req in requests]


def listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


class Server(Protocol):
    """The server process: a `subprocess.Popen`, or a forked child (probe.py)."""

    pid: int

    def poll(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int: ...


def probe(request: dict[str, Any], start: Callable[[IO[bytes]], Server]) -> dict[str, Any]:
    """Start the server with `start(log)`, wait for its port, send the requests, stop it."""
    port = int(request["port"])
    # closed below, after the server stopped
    log = tempfile.NamedTemporaryFile(prefix="server-", suffix=".log", delete=False)  # noqa: SIM115
    server = start(log)
    started = time.monotonic()
    deadline = started + float(request["start_seconds"])
    result: dict[str, Any] = {"started": False, "responses": []}
    while time.monotonic() < deadline and server.poll() is None:
        if listening(port):
            result["started"] = True
            break
        time.sleep(0.05)
    result["start_seconds"] = round(time.monotonic() - started, 2)
    if result["started"]:
        result["responses"] = run_requests(f"http://127.0.0.1:{port}", request["requests"])
    result["exit_code"] = server.poll()
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
    log.close()
    with open(log.name, errors="replace") as f:
        result["server_log"] = f.read()[-4000:]
    os.unlink(log.name)
    return result


def main() -> None:
    request = json.load(sys.stdin)

    def start(log: IO[bytes]) -> Server:
        return subprocess.Popen(
            request["server"],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    result = probe(request, start)
    print(f"GRADER-RESULT {request['nonce']} {json.dumps(result)}", flush=True)


if __name__ == "__main__":
    main()
