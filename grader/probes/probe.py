"""Sandboxed: the model probe and the HTTP probe in one process that imports the stack once.

Started while train.py runs, it imports what every submission needs (scikit-learn, pandas,
FastAPI, uvicorn), then reads the grader's three messages on stdin: the server's command line
(the server child is forked right after it, before anything secret is read), the records to
score (the model child is forked right after them), then the nonce and the HTTP requests (read
by this process only, which runs no student code). It writes one result line to the descriptor
`--result-fd N`. It runs without site processing and imports from the environment only the
modules `--modules` names (`siteguard.py`). Protocol: grader/INTERNALS.md, "The probe".

Standard library only at its core: it imports nothing from the grader (its siblings are loaded
by path), and an import that fails here is simply left to the child that needs it.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path
from types import ModuleType
from typing import IO, Any

HERE = Path(__file__).resolve().parent
RESULT_FD: int | None = None  # `--result-fd N`: where the result goes (closed in children)
MODEL_RESULT_BYTES = 64 * 1024**2  # at most this much of the model child's answer is read

# Imported once, before the request comes: what a pickled Pipeline and a FastAPI app load.
PREWARM = (
    "numpy",
    "scipy",
    "pandas",
    "sklearn",
    "sklearn.pipeline",
    "sklearn.feature_extraction",
    "sklearn.linear_model",
    "sklearn.preprocessing",
    "pydantic",
    "fastapi",
    "uvicorn",
    "uvicorn.main",
    "uvicorn.config",
    "uvicorn.loops.auto",
    "uvicorn.protocols.http.auto",
    "uvicorn.protocols.websockets.auto",
    "uvicorn.lifespan.on",
)


def sibling(name: str) -> ModuleType:
    """grader/probes/<name>.py, loaded by path once (`python -I` puts no script folder on
    sys.path)."""
    key = f"_grader_probe_{name}"
    if key in sys.modules:
        return sys.modules[key]
    spec = importlib.util.spec_from_file_location(key, HERE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[key] = module
    spec.loader.exec_module(module)
    return module


def prewarm() -> list[str]:
    failed = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in PREWARM:
            try:
                importlib.import_module(name)
            except Exception:
                failed.append(name)
    return failed


def redirect_output(path: str) -> None:
    """In a child: stdin from /dev/null, stdout and stderr (line-buffered) to `path`."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    os.close(null)
    sys.stdin = open(0, closefd=False)  # noqa: SIM115 - fd 0 stays open for the child's life
    sys.stdout = open(1, "w", buffering=1, closefd=False, errors="backslashreplace")  # noqa: SIM115
    sys.stderr = open(2, "w", buffering=1, closefd=False, errors="backslashreplace")  # noqa: SIM115


class Forked:
    """A forked child, with the part of `subprocess.Popen`'s interface the probes use."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"pid {self.pid}", timeout or 0)
            time.sleep(0.02)
        assert self.returncode is not None
        return self.returncode

    def kill(self) -> None:
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
            self.wait()


def fork(job: Any, log: str) -> Forked:
    """Run `job()` in a child of its own session (killable as a group); its exit code is the
    child's. Output goes to `log`."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        return Forked(pid)
    code = 1
    try:
        if RESULT_FD is not None:
            os.close(RESULT_FD)
        os.setsid()
        redirect_output(log)
        code = int(job() or 0)
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        if not isinstance(e.code, int) and e.code is not None:
            # what the interpreter does with `sys.exit("message")`: the app's own words
            with contextlib.suppress(Exception):
                print(e.code, file=sys.stderr)
    except BaseException:
        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def uvicorn_job(argv: list[str]) -> Any:
    """`python -m uvicorn ARGS` run as a call: uvicorn's command line, same options and checks."""

    def job() -> int:
        sibling("siteguard").unguard()
        import uvicorn.main

        sys.argv = ["uvicorn", *argv]
        uvicorn.main.main(args=argv, prog_name="uvicorn")  # exits through SystemExit
        return 0

    return job


def tail(path: str, chars: int = 3000) -> str:
    try:
        with open(path, errors="replace") as f:
            return f.read()[-chars:]
    except OSError:
        return ""


def start_model(request: dict[str, Any], workdir: str) -> tuple[Forked, int, str]:
    """Fork the child that unpickles and scores; its JSON answer comes back on a pipe."""
    model_probe = sibling("model_probe")
    log = os.path.join(workdir, "model.log")
    read_end, write_end = os.pipe()

    def job() -> int:
        os.close(read_end)
        result = model_probe.probe(request)
        data = json.dumps(result).encode()
        while data:
            data = data[os.write(write_end, data) :]
        return 0

    child = fork(job, log)
    os.close(write_end)
    return child, read_end, log


def finish_model(child: Forked, pipe: int, log: str, deadline: float) -> dict[str, Any]:
    chunks: list[bytes] = []
    os.set_blocking(pipe, False)
    try:
        while True:  # drain the pipe while waiting (a large answer must not block the child)
            with contextlib.suppress(BlockingIOError):
                while chunk := os.read(pipe, 1 << 16):
                    chunks.append(chunk)
                    if sum(map(len, chunks)) > MODEL_RESULT_BYTES:
                        child.kill()
                        return {"error": "the process that loads the pickles wrote too much"}
            if child.poll() is not None:
                with contextlib.suppress(BlockingIOError):
                    while chunk := os.read(pipe, 1 << 16):
                        chunks.append(chunk)
                break
            if time.monotonic() > deadline:
                child.kill()
                return {
                    "error": "loading and scoring the pickles did not finish in time\n" + tail(log)
                }
            time.sleep(0.02)
    finally:
        os.close(pipe)
    code = child.returncode
    if code == 0 and chunks:
        with contextlib.suppress(ValueError):
            result = json.loads(b"".join(chunks))
            if isinstance(result, dict):
                return result
    how = (
        f"was killed by {signal.Signals(-code).name} (a resource limit?)"
        if code and code < 0
        else f"exited with code {code}"
    )
    return {"error": f"the process that loads the pickles {how}\n{tail(log)}"}


def start_server(server: dict[str, Any], workdir: str, warm: bool) -> tuple[Any, IO[bytes]]:
    """Start the submission's server (forked from this warm process when it is uvicorn)."""
    argv = list(server["argv"])
    log = open(os.path.join(workdir, "server.log"), "wb")  # noqa: SIM115 - closed by probe()
    if warm and argv[1:3] == ["-m", "uvicorn"]:
        return fork(uvicorn_job(argv[3:]), log.name), log
    proc = subprocess.Popen(
        argv,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    return proc, log


def run_http(request: dict[str, Any], server: Any, log: IO[bytes]) -> dict[str, Any]:
    http_probe = sibling("http_probe")
    result: dict[str, Any] = http_probe.probe(request, lambda _log: server, log)
    return result


def read_message(fd: int = 0) -> dict[str, Any]:
    """One `<length>\n<json>` message from `fd`, read to the byte: nothing after it is read,
    so a child forked now holds no copy of the messages still to come."""
    header = b""
    while not header.endswith(b"\n"):
        byte = os.read(fd, 1)
        if not byte or len(header) > 20:
            raise SystemExit("probe: the grader's request ended early")
        header += byte
    size = int(header)
    data = bytearray()
    while len(data) < size:
        chunk = os.read(fd, size - len(data))
        if not chunk:
            raise SystemExit("probe: the grader's request ended early")
        data += chunk
    value = json.loads(bytes(data))
    return value if isinstance(value, dict) else {}


def not_dumpable() -> None:
    """Linux: make /proc/<this pid>/fd unreadable to the children (same user), so student code
    cannot write to this process's stdout; forked children hold a copy of the nonce."""
    with contextlib.suppress(Exception):
        import ctypes

        pr_set_dumpable = 4
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_dumpable, 0, 0, 0, 0)


def write_result(line: str) -> None:
    """The result line, to the result descriptor if there is one, else to stdout."""
    if RESULT_FD is None:
        sys.stdout.flush()
        print(line, flush=True)
        return
    data = (line + "\n").encode()
    while data:
        data = data[os.write(RESULT_FD, data) :]


def options(argv: list[str]) -> dict[str, str]:
    """`--result-fd N`, `--site DIR`, `--modules a,b,c` (given by the grader, in any order)."""
    found = {}
    for flag, value in zip(argv[::2], argv[1::2], strict=False):
        found[flag.removeprefix("--")] = value
    return found


def main() -> None:
    global RESULT_FD
    given = options(sys.argv[1:])
    if "result-fd" in given:
        RESULT_FD = int(given["result-fd"])
    if "site" in given:  # before any import from the environment
        sibling("siteguard").guard(given["site"], given.get("modules", ""))
    not_dumpable()
    sys.dont_write_bytecode = True  # as PYTHONDONTWRITEBYTECODE for the server (-I ignores it)
    began = time.monotonic()
    failed = prewarm()
    warm = time.monotonic()
    workdir = tempfile.mkdtemp(prefix="probe-")
    first = read_message()
    server = None
    if "server" in first:  # forked before anything secret is read
        server = start_server(first["server"], workdir, warm="uvicorn.main" not in failed)
    second = read_message()
    asked = time.monotonic()
    result: dict[str, Any] = {}
    model = None
    if "model" in second:
        deadline = time.monotonic() + float(second.get("model_seconds", 180))
        model = (*start_model(second["model"], workdir), deadline)
    request = read_message()  # the nonce and the HTTP requests: this process only
    if "http" in request and server is not None:
        result["http"] = run_http(request["http"], *server)
    served = time.monotonic()
    if model is not None:
        result["model"] = finish_model(*model)
    result["seconds"] = {
        "prewarm": round(warm - began, 2),
        "waited": round(asked - warm, 2),
        "http": round(served - asked, 2),
        "model": round(time.monotonic() - asked, 2),
    }
    write_result(f"GRADER-RESULT {request['nonce']} {json.dumps(result)}")


if __name__ == "__main__":
    main()
    os._exit(0)  # skip tearing down scikit-learn & co.: the result is out, seconds saved
