"""Sandboxed: the model probe and the HTTP probe in one process that imports the stack once.

The grader starts this script while train.py still runs. It first imports what every submission
needs (scikit-learn, pandas, FastAPI, uvicorn: seconds of CPU time), then blocks on stdin until
the grader sends the request, once the models exist. Each job runs in a child forked from this
warm process, so no job imports scikit-learn again, and a crash or hang in one costs that job
only:

- "model": a child unpickles the files and scores the records (`model_probe.probe`); it may take
  `model_seconds`, then it is killed.
- "http": a child runs `uvicorn predict:app ...` (uvicorn's own command line, called in the
  child instead of a new interpreter), while this process waits for the port and sends the
  requests (`http_probe.probe`).

stdin:  {"nonce": str, "model": {model_probe's request}?, "model_seconds": float?,
         "http": {http_probe's request}?}
result: `GRADER-RESULT <nonce> {"model": {...}?, "http": {...}?}`, written to the descriptor
        given as `--result-fd N` (the grader's unlinked file; closed in every forked child and
        unreachable through /proc, so student code can neither spoof nor drown it), or printed
        on stdout without that option

Standard library only at its core: it imports nothing from the grader (its siblings are loaded by
path), and an import that fails here is simply left to the child that needs it.
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
    """Load grader/probes/<name>.py by path (`python -I` puts no script folder on sys.path)."""
    spec = importlib.util.spec_from_file_location(f"_grader_probe_{name}", HERE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
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


def start_model(request: dict[str, Any], workdir: str) -> tuple[Forked, str, str]:
    model_probe = sibling("model_probe")
    out = os.path.join(workdir, "model-result.json")
    log = os.path.join(workdir, "model.log")

    def job() -> int:
        result = model_probe.probe(request)
        with open(out, "w") as f:
            json.dump(result, f)
        return 0

    return fork(job, log), out, log


def finish_model(child: Forked, out: str, log: str, deadline: float) -> dict[str, Any]:
    try:
        child.wait(timeout=max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        child.kill()
        return {"error": "loading and scoring the pickles did not finish in time\n" + tail(log)}
    code = child.returncode
    if code == 0 and os.path.isfile(out):
        with open(out) as f:
            result: dict[str, Any] = json.load(f)
        return result
    how = (
        f"was killed by {signal.Signals(-code).name} (a resource limit?)"
        if code and code < 0
        else f"exited with code {code}"
    )
    return {"error": f"the process that loads the pickles {how}\n{tail(log)}"}


def run_http(request: dict[str, Any], workdir: str, warm: bool) -> dict[str, Any]:
    http_probe = sibling("http_probe")
    argv = list(request["server"])
    in_process = warm and argv[1:3] == ["-m", "uvicorn"]

    def start(log: IO[bytes]) -> Any:
        if in_process:
            return fork(uvicorn_job(argv[3:]), log.name)
        return subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip

    result: dict[str, Any] = http_probe.probe(request, start)
    return result


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


def main() -> None:
    global RESULT_FD
    if sys.argv[1:2] == ["--result-fd"]:
        RESULT_FD = int(sys.argv[2])
    not_dumpable()
    sys.dont_write_bytecode = True  # as PYTHONDONTWRITEBYTECODE for the server (-I ignores it)
    began = time.monotonic()
    failed = prewarm()
    warm = time.monotonic()
    request = json.load(sys.stdin)
    asked = time.monotonic()
    workdir = tempfile.mkdtemp(prefix="probe-")
    result: dict[str, Any] = {}
    model = None
    if "model" in request:
        deadline = time.monotonic() + float(request.get("model_seconds", 180))
        model = (*start_model(request["model"], workdir), deadline)
    if "http" in request:
        result["http"] = run_http(request["http"], workdir, warm="uvicorn.main" not in failed)
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
