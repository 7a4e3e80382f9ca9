"""HTTP requests with hard deadlines, and the probe of a server started in the sandbox.

probe.py (in the sandbox) calls `probe()` with the server it forked: wait for its port, send the
grader's requests, report every answer as JSON-ready data. The grader imports `run_requests` to
probe a container or a live deployment (`--url`) from outside. Standard library only: it runs
in any environment and imports nothing from the grader.
"""

from __future__ import annotations

import collections
import contextlib
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable
from typing import IO, Any, Protocol

MAX_BODY = 20_000  # characters of a body kept as text
MAX_JSON = 1_000_000  # bytes of a body read and parsed; a longer one is reported truncated
MAX_DRAIN = 8 * 1024**2  # bytes read past MAX_JSON to measure a body without Content-Length


def send(
    base_url: str, req: dict[str, Any], timeout: float = 15.0, deadline: float | None = None
) -> dict[str, Any]:
    """One HTTP request; the answer as {"id", "status", "json" or "text"} or {"id", "error"}.

    The whole exchange (connect, headers, body) ends within `timeout` seconds, and by the
    monotonic `deadline` if given: a server that answers one byte a second is cut off, with
    "error", instead of holding the grader (the socket is shut down from a timer)."""
    out: dict[str, Any] = {"id": req["id"]}
    limit = timeout if deadline is None else min(timeout, deadline - time.monotonic())
    if limit <= 0:
        out["error"] = "not sent: the time for all requests was spent"
        return out
    data: bytes | None = None
    if "raw" in req:
        data = str(req["raw"]).encode()
    elif "body" in req:
        data = json.dumps(req["body"]).encode()
    url = urllib.parse.urlsplit(base_url.rstrip("/") + req["path"])
    kind = http.client.HTTPSConnection if url.scheme == "https" else http.client.HTTPConnection
    started = time.monotonic()
    try:
        conn = kind(url.hostname or "127.0.0.1", url.port, timeout=limit)
    except (OSError, ValueError) as e:
        out["error"] = f"{type(e).__name__}: {e}"
        return out
    timer: threading.Timer | None = None
    try:
        conn.connect()
        timer = threading.Timer(limit - (time.monotonic() - started), _cut, (conn.sock,))
        timer.start()
        headers = {"Content-Type": "application/json"} if data is not None else {}
        path = url.path + (f"?{url.query}" if url.query else "")
        conn.request(req.get("method", "GET"), path or "/", body=data, headers=headers)
        response = conn.getresponse()
        status, (raw, size) = response.status, _read(response)
    except (OSError, ValueError, http.client.HTTPException) as e:
        if time.monotonic() - started >= limit - 0.05:
            out["error"] = f"no complete answer within {limit:.0f} s"
        else:
            out["error"] = f"{type(e).__name__}: {e}"
        return out
    finally:
        if timer is not None:
            timer.cancel()
        conn.close()
    if time.monotonic() - started >= limit - 0.05:  # cut off: what came is not the answer
        out["error"] = f"no complete answer within {limit:.0f} s"
        return out
    out["status"] = status
    out["seconds"] = round(time.monotonic() - started, 4)
    return _body(out, raw, size)


def _body(out: dict[str, Any], raw: bytes, size: int) -> dict[str, Any]:
    """The answer's body: as JSON, else its start as text (and its size when cut)."""
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


def _cut(sock: socket.socket | None) -> None:
    """Unblock a request past its time: shut its socket down (the read then fails). The
    socket, not the connection: http.client lets go of it once the response has begun."""
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


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


def run_requests(
    base_url: str, requests: list[dict[str, Any]], total_seconds: float | None = None
) -> list[dict[str, Any]]:
    """Each request in turn, all of them within `total_seconds` (if given)."""
    deadline = None if total_seconds is None else time.monotonic() + total_seconds
    return [send(base_url, req, deadline=deadline) for req in requests]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


class Server(Protocol):
    """The server process: a `subprocess.Popen`, or a forked child (probe.py)."""

    pid: int

    def poll(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int: ...


def probe(
    request: dict[str, Any], start: Callable[[IO[bytes]], Server], log: IO[bytes] | None = None
) -> dict[str, Any]:
    """Start the server with `start(log)`, wait for its port, send the requests, stop it.
    `log`: the server's log file when it was started already (probe.py), else a new one."""
    port = int(request["port"])
    if log is None:  # closed below, after the server stopped
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
    result["server_log"] = log_without_access_lines(log.name)
    os.unlink(log.name)
    return result


ACCESS_LINE = re.compile(r'^INFO: +\S+ - "[A-Z]+ ')  # uvicorn's line per request


def log_without_access_lines(path: str, keep: int = 12000) -> str:
    """The server's log without uvicorn's one line per request (the grader sends dozens),
    so that the traceback under a 500 stays within the `keep` characters reported."""
    kept: collections.deque[str] = collections.deque()
    size = 0
    with open(path, errors="replace") as f:
        for line in f:
            if ACCESS_LINE.match(line):
                continue
            kept.append(line)
            size += len(line)
            while size > keep and len(kept) > 1:
                size -= len(kept.popleft())
    return "".join(kept)[-keep:]
