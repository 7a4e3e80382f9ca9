"""Helpers shared by the repository's tests and benchmarks: the steps, the example customer (its one
definition), dataset paths, free ports, a real server started and stopped, one raw HTTP post, and
a step's FastAPI app loaded and started in-process for TestClient."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
STEPS = [
    "01-train",
    "02-pipeline",
    "03-fastapi",
    "04-pydantic",
    "05-uv",
    "06-docker",
    "07-flyio",
]
# STEPS are the lessons, one per grader stage (stage n = STEPS[n - 1]). Step 08 goes further:
# the service hardened against hostile input; fuzzing, load and fault tests target it.
HARDENED_STEP = "08-hardening"
# Step 09 serves 08's service from the pipeline exported to ONNX, without scikit-learn.
ONNX_STEP = "09-onnx"
ALL_STEPS = [*STEPS, HARDENED_STEP, ONNX_STEP]
# The steps that serve the model over HTTP; from 04 on, the request is validated.
SERVICE_STEPS = ALL_STEPS[2:]
VALIDATED_STEPS = ALL_STEPS[3:]

DATASETS = {
    "CHURN_DATA": "WA_Fn-UseC_-Telco-Customer-Churn.csv",
    "CREDIT_DATA": "AER_credit_card_data.csv",
}

EXAMPLE_CUSTOMER: dict[str, object] = {
    "gender": "female",
    "seniorcitizen": 0,
    "partner": "yes",
    "dependents": "no",
    "phoneservice": "no",
    "multiplelines": "no_phone_service",
    "internetservice": "dsl",
    "onlinesecurity": "no",
    "onlinebackup": "yes",
    "deviceprotection": "no",
    "techsupport": "no",
    "streamingtv": "no",
    "streamingmovies": "no",
    "contract": "month-to-month",
    "paperlessbilling": "yes",
    "paymentmethod": "electronic_check",
    "tenure": 1,
    "monthlycharges": 29.85,
    "totalcharges": 29.85,
}


def dataset(var: str) -> Path:
    """Path of a dataset: $VAR, else ../shared/data. In CI a missing file fails the test."""
    value = os.environ.get(var)
    path = Path(value) if value else SHARED / "data" / DATASETS[var]
    if not path.is_file():
        message = f"dataset {var} not found at {path}: set {var} to the CSV"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def shared_file(*parts: str) -> Path:
    """A file of ../shared (test tools a fresh clone does not have): skip with the reason when it
    is missing, fail under CI=true."""
    path = SHARED.joinpath(*parts)
    if not path.is_file():
        message = f"{path} not found: it comes with the course's CI tools, not with a clone"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def data_env() -> dict[str, str]:
    """os.environ plus CHURN_DATA and CREDIT_DATA pointing at existing files."""
    env = dict(os.environ)
    for var in DATASETS:
        env[var] = str(dataset(var))
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when a server could listen on port now (connections in TIME_WAIT do not count)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def http(
    method: str, url: str, body: object | None = None, timeout: float = 10.0
) -> tuple[int, object]:
    """One real HTTP request; returns (status, decoded JSON or text). Never raises on 4xx/5xx."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


def raw_post(url: str, data: bytes, timeout: float = 10.0) -> tuple[int, bytes]:
    """POST raw bytes as application/json; returns (status, body bytes). Never raises on 4xx/5xx."""
    request = urllib.request.Request(
        url, data=data, method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def uvicorn_cmd(port: int, python_exe: str | None = None) -> list[str]:
    """How a student starts the service (one worker), bound to loopback for the tests."""
    exe = python_exe or python()
    return [exe, "-m", "uvicorn", "predict:app", "--host", "127.0.0.1", "--port", str(port)]


def step_app(folder: Path) -> Any:
    """Import folder/predict.py the way uvicorn does (from inside the folder) and return its
    `app`, for FastAPI's TestClient. Each folder gets its own module name."""
    name = "predict_" + "".join(c if c.isalnum() else "_" for c in str(folder))
    spec = importlib.util.spec_from_file_location(name, folder / "predict.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    old = Path.cwd()
    os.chdir(folder)
    try:
        spec.loader.exec_module(module)
    finally:
        os.chdir(old)
    return module.app


@contextlib.contextmanager
def step_client(folder: Path) -> Iterator[Any]:
    """FastAPI's TestClient on a step's app, started as uvicorn starts it in the folder: the
    app's lifespan (step 08 on: it loads the model, by a path relative to the folder) runs from
    inside the folder."""
    from fastapi.testclient import TestClient

    client = TestClient(step_app(folder), raise_server_exceptions=False)
    old = Path.cwd()
    os.chdir(folder)
    try:
        client.__enter__()
    finally:
        os.chdir(old)
    try:
        yield client
    finally:
        client.__exit__(None, None, None)


def wait_http(url: str, timeout: float = 60.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Poll url until it answers 2xx; fail early if proc dies."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode} before answering {url}")
        try:
            status, _ = http("GET", url, timeout=2)
            if 200 <= status < 300:
                return
            last = status
        except OSError as e:
            last = e
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer 2xx within {timeout}s (last: {last})")


@contextlib.contextmanager
def server(
    cmd: Sequence[str],
    cwd: Path,
    ready_url: str,
    env: Mapping[str, str] | None = None,
    timeout: float = 60.0,
) -> Iterator[subprocess.Popen[bytes]]:
    """Start a real server process, wait until ready_url answers, stop it cleanly afterwards."""
    log = (cwd / ".server.log").open("wb")
    proc = subprocess.Popen(
        list(cmd),
        cwd=cwd,
        env=dict(env) if env is not None else None,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        try:
            wait_http(ready_url, timeout=timeout, proc=proc)
        except AssertionError as e:
            log.flush()
            tail = (cwd / ".server.log").read_text(errors="replace")[-3000:]
            raise AssertionError(f"{e}\n--- server output ---\n{tail}") from None
        yield proc
    finally:
        stop(proc)
        log.close()


def stop(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> int:
    """SIGTERM the process group, SIGKILL if it does not exit in time; return the exit code."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.returncode


def copy_step(step: str, dest: Path) -> Path:
    """A scratch copy of a step folder without trained models or caches."""
    target = dest / step
    shutil.copytree(
        ROOT / step,
        target,
        ignore=shutil.ignore_patterns("*.bin", ".venv", "__pycache__", ".server.log"),
    )
    return target


def python() -> str:
    """The interpreter of the project's environment (the one running the tests)."""
    return sys.executable


def two_at_a_time[K: Hashable, V](work: Callable[[K], V], keys: Iterable[K]) -> dict[K, V]:
    """{key: work(key)}, two keys at a time (as `grade batch --jobs 2` grades a cohort): the
    gradings of a module wait on processes, so two share this machine's 2 cores well."""
    keys = list(keys)
    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(keys, pool.map(work, keys), strict=True))


def selected(request: pytest.FixtureRequest, param: str) -> list[Any]:
    """The values of the parameter `param` of the tests this session runs from the requesting
    module (a module fixture then prepares those only, not every case a `-k` left out)."""
    found: list[Any] = []
    for item in request.session.items:
        if item.module is request.module and hasattr(item, "callspec"):  # type: ignore[attr-defined]
            value = item.callspec.params.get(param)
            if value is not None and value not in found:
                found.append(value)
    return found


def where_no_sandbox(args: Sequence[str], folder: Path) -> list[str]:
    """`args` of a grading, as they must be where bubblewrap cannot start (a laptop without
    it): `--no-sandbox`, and a seed given in a file (`--seed-file`, under `folder`) rather than
    on the command line. Unchanged where the sandbox works. The grader refuses a seeded
    grading or a batch unprotected unless told: these tests are about something else."""
    from grader.sandbox import bwrap_available

    if bwrap_available() is not None:
        return list(args)
    out = list(args)
    if "--seed" in out:
        i = out.index("--seed")
        seed = folder / f"seed-{out[i + 1]}.txt"
        seed.write_text(out[i + 1])
        seed.chmod(0o600)
        out[i : i + 2] = ["--seed-file", str(seed)]
    return [*out, "--no-sandbox"]
