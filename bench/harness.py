"""What the benchmarks share: trained copies of the steps, servers on loopback, wrk, /proc."""

from __future__ import annotations

import contextlib
import ctypes
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "WA_Fn-UseC_-Telco-Customer-Churn.csv"
HOST = "127.0.0.1"

# The steps compared, each served as it is: `uvicorn predict:app` in a trained copy of its folder.
STEPS = {
    "07": "07-flyio",  # the lesson's final service: pickle, scikit-learn
    "08": "08-hardening",  # the same, hardened (strict input, body limit, /predict_batch)
    "09": "09-onnx",  # 08 with the pipeline exported to ONNX, served by ONNX Runtime
}

CUSTOMER: dict[str, object] = {
    "gender": "female", "seniorcitizen": 0, "partner": "yes", "dependents": "no",
    "phoneservice": "no", "multiplelines": "no_phone_service", "internetservice": "dsl",
    "onlinesecurity": "no", "onlinebackup": "yes", "deviceprotection": "no",
    "techsupport": "no", "streamingtv": "no", "streamingmovies": "no",
    "contract": "month-to-month", "paperlessbilling": "yes",
    "paymentmethod": "electronic_check", "tenure": 1, "monthlycharges": 29.85,
    "totalcharges": 29.85,
}  # fmt: skip


def churn_data() -> Path:
    path = Path(os.environ.get("CHURN_DATA") or DEFAULT_DATA)
    if not path.is_file():
        sys.exit(f"churn CSV not found at {path}: set CHURN_DATA to it")
    return path


def prepare(workdir: Path) -> dict[str, Path]:
    """A trained copy of each step in STEPS (its own train.py writes its models)."""
    env = {**os.environ, "CHURN_DATA": str(churn_data())}
    ignore = shutil.ignore_patterns("*.bin", "*.onnx", ".venv", "__pycache__", ".server*.log")
    copies = {}
    for name, folder in STEPS.items():
        step = workdir / folder
        shutil.copytree(ROOT / folder, step, ignore=ignore)
        subprocess.run(
            [sys.executable, "train.py"], cwd=step, env=env, check=True, stdout=subprocess.DEVNULL
        )
        copies[name] = step
    return copies


@contextlib.contextmanager
def workspace() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        yield Path(tmp)


def bytecode_env(tmp: Path) -> dict[str, str]:
    """os.environ with a shared, writable bytecode cache: every start after the first one finds
    the packages compiled, as in an image built with UV_COMPILE_BYTECODE=1."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {**env, "PYTHONPYCACHEPREFIX": str(tmp / "pycache")}


def request(
    port: int, method: str, path: str, body: object = None, timeout: float = 5.0
) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        payload = None if body is None else json.dumps(body)
        headers = {"Content-Type": "application/json"} if body is not None else {}
        conn.request(method, path, body=payload, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def first_ok(
    port: int,
    method: str,
    path: str,
    body: object,
    proc: subprocess.Popen[bytes],
    timeout: float,
    poll: float = 0.01,
) -> float:
    """Poll until the server answers 200 (every 10 ms); return the monotonic time of that answer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before answering")
        with contextlib.suppress(OSError):
            if request(port, method, path, body)[0] == 200:
                return time.monotonic()
        time.sleep(poll)
    raise RuntimeError(f"no 200 from {path} within {timeout} s")


def start(
    cmd: Sequence[str], cwd: Path, env: Mapping[str, str] | None, log: Path | None = None
) -> subprocess.Popen[bytes]:
    """A process in its own session (so that its CPU time and memory can be read, and the whole
    group stopped), that gets SIGTERM if the benchmark dies."""
    out = log.open("wb") if log else subprocess.DEVNULL
    try:
        return subprocess.Popen(
            list(cmd),
            cwd=cwd,
            env=dict(env) if env is not None else None,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
    finally:
        if log:
            out.close()  # type: ignore[union-attr]


@contextlib.contextmanager
def running(
    cmd: Sequence[str],
    cwd: Path,
    port: int,
    env: Mapping[str, str] | None = None,
    ready: str = "/ping",
    timeout: float = 120.0,
) -> Iterator[subprocess.Popen[bytes]]:
    """A server process, started, polled until `ready` answers 200, and stopped after."""
    log = cwd / f".server-{port}.log"
    proc = start(cmd, cwd, env, log)
    try:
        try:
            first_ok(port, "GET", ready, None, proc, timeout, poll=0.1)
        except RuntimeError as e:
            raise RuntimeError(f"{e}\n{log.read_text(errors='replace')[-2000:]}") from None
        yield proc
    finally:
        stop(proc)


def die_with_parent() -> None:
    """In a child before exec: get SIGTERM when the benchmark dies (Linux), so no server is left."""
    if sys.platform == "linux":
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def uvicorn(port: int) -> list[str]:
    """The lesson's own command, one worker; uvicorn[standard] picks uvloop and httptools."""
    return [sys.executable, "-m", "uvicorn", "predict:app", "--host", HOST, "--port", str(port),
            "--no-access-log", "--log-level", "warning"]  # fmt: skip


def gunicorn(port: int) -> list[str]:
    """bench/flask_app.py the course's previous way: gunicorn's default, one sync worker.
    Run in a step's folder, it loads that folder's pipeline.bin."""
    return [sys.executable, "-m", "gunicorn", "--bind", f"{HOST}:{port}", "--workers", "1",
            "--pythonpath", str(ROOT / "bench"), "flask_app:app"]  # fmt: skip


# wrk runs this script: it sends `body` (if any) and prints the summary as one JSON line.
WRK_LUA = """
wrk.method = "{method}"
wrk.headers["Content-Type"] = "application/json"
{body}
done = function(summary, latency, requests)
  io.write(string.format(
    '{{"requests": %d, "seconds": %f, "non2xx": %d, "errors": %d, "p50_us": %d, "p99_us": %d}}\\n',
    summary.requests, summary.duration / 1e6, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


@dataclass
class Result:
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    cpu_ms: float = float("nan")  # the server's CPU time per request (user + system)


def session_processes(session: int) -> Iterator[tuple[Path, list[str]]]:
    """(/proc/PID, the fields of its stat after "(comm)") of every process of a session."""
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process has gone
        if int(fields[3]) == session:  # state, ppid, pgrp, session, …
            yield proc, fields


def cpu_seconds(session: int) -> float:
    """CPU time (user + system) used so far by the processes of a session (Linux /proc)."""
    ticks = sum(int(f[11]) + int(f[12]) for _, f in session_processes(session))  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def rss_mb(session: int) -> float:
    """Resident memory of the processes of a session, in MB (VmRSS from /proc)."""
    total_kb = 0
    for proc, _ in session_processes(session):
        with contextlib.suppress(OSError):
            for line in (proc / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
    return total_kb / 1000


def wrk(
    port: int,
    path: str,
    body: object,
    seconds: int,
    workdir: Path,
    server: int | None = None,
    connections: int = 8,
) -> Result:
    """Drive http://127.0.0.1:port/path with wrk (one thread); fail on any non-2xx answer.

    With the server's session id, also measure the server's CPU time per request: unlike
    requests/s, it hardly changes when other work shares the machine.
    """
    script = workdir / f"wrk-{port}.lua"
    method = "GET" if body is None else "POST"
    body_line = "" if body is None else f"wrk.body = [==[{json.dumps(body)}]==]"
    script.write_text(WRK_LUA.format(method=method, body=body_line))
    url = f"http://{HOST}:{port}{path}"
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s",
           "-s", str(script), url]  # fmt: skip
    cpu_before = cpu_seconds(server) if server else 0.0
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=seconds + 60)
    cpu = cpu_seconds(server) - cpu_before if server else float("nan")
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    if summary["non2xx"] or summary["errors"] or not summary["requests"]:
        raise RuntimeError(f"wrk on {url}: {summary}")
    return Result(
        requests_per_s=summary["requests"] / summary["seconds"],
        p50_ms=summary["p50_us"] / 1000,
        p99_ms=summary["p99_us"] / 1000,
        cpu_ms=1000 * cpu / summary["requests"],
    )
