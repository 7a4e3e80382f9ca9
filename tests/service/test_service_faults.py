"""Faults of the hardened service (step 08): a bad model file, SIGTERM under load, 10 MB bodies.

The service runs as a student runs it (`uvicorn predict:app`, one worker) on loopback.
"""

from __future__ import annotations

import json
import pickle
import random
import select
import signal
import socket
import subprocess
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.service_tools import (
    FINAL_STEP,
    LoadResult,
    predict_body,
    run_load,
    service,
    trained_step,
    uvicorn_cmd,
)
from tests.support import EXAMPLE_CUSTOMER, free_port, http, python, stop, wait_http

pytestmark = pytest.mark.slow

STARTUP_SECONDS = 60.0


@pytest.fixture(scope="module")
def final(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trained copy of the final service (pipeline.bin)."""
    return trained_step(FINAL_STEP, tmp_path_factory.mktemp("faults"))


def _missing(folder: Path) -> None:
    (folder / "pipeline.bin").unlink()


def _garbage(folder: Path) -> None:
    (folder / "pipeline.bin").write_bytes(random.Random(6).randbytes(4096))


def _truncated(folder: Path) -> None:
    path = folder / "pipeline.bin"
    path.write_bytes(path.read_bytes()[:2000])


def _empty(folder: Path) -> None:
    (folder / "pipeline.bin").write_bytes(b"")


def _text(folder: Path) -> None:
    (folder / "pipeline.bin").write_text("version https://git-lfs.github.com/spec/v1\n")


def _directory(folder: Path) -> None:
    (folder / "pipeline.bin").unlink()
    (folder / "pipeline.bin").mkdir()


def _wrong_object(folder: Path) -> None:
    # what step 01's model.bin holds, the (DictVectorizer, model) tuple, under the pipeline's name
    path = folder / "pipeline.bin"
    with path.open("rb") as f:
        dv, model = pickle.load(f).named_steps.values()
    with path.open("wb") as f:
        pickle.dump((dv, model), f)


BAD_MODELS: list[object] = [
    pytest.param(_missing, "not found", id="missing"),
    pytest.param(_garbage, "not a readable model", id="random-bytes"),
    pytest.param(_truncated, "not a readable model", id="truncated-pickle"),
    pytest.param(_empty, "not a readable model", id="empty-file"),
    pytest.param(_text, "not a readable model", id="git-lfs-pointer"),
    pytest.param(
        _directory,
        "pipeline.bin",
        id="directory",
    ),
    pytest.param(
        _wrong_object,
        "pipeline",
        id="tuple-not-pipeline",
    ),
]


@pytest.mark.parametrize(("damage", "expected"), BAD_MODELS)
def test_bad_model_file_exits_with_a_clear_message(
    damage: Callable[[Path], None],
    expected: str,
    final: Path,
    tmp_path: Path,
) -> None:
    folder = trained_step(FINAL_STEP, tmp_path)
    damage(folder)
    port = free_port()
    proc = subprocess.Popen(
        uvicorn_cmd(port),
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/ping", timeout=STARTUP_SECONDS, proc=proc)
    except AssertionError:
        pass  # it exited (expected) or never answered
    else:
        status, body = http("POST", f"http://127.0.0.1:{port}/predict", EXAMPLE_CUSTOMER)
        stop(proc)
        pytest.fail(f"the service started with a bad model; POST /predict → {status} {body}")
    finally:
        code = stop(proc)
    assert proc.stdout is not None
    output = proc.stdout.read().decode(errors="replace")
    assert code not in (0, None), output
    # The start-up (FastAPI's lifespan) fails with the message as its last line, not with the
    # pickle error's own traceback.
    message = [line for line in output.splitlines() if line.startswith("SystemExit: ")]
    assert message, f"no SystemExit message:\n{output}"
    assert expected in message[-1] and "train.py" in message[-1], output
    assert "During handling of the above exception" not in output, output
    assert "Application startup failed" in output, output


MUTANTS = 200
MUTATION_SCRIPT = textwrap.dedent(
    """
    import json, os, random, resource, runpy, shutil, sys, warnings
    warnings.simplefilter("ignore")
    resource.setrlimit(resource.RLIMIT_AS, (4 * 1024**3, 4 * 1024**3))
    from fastapi.testclient import TestClient
    customer = json.loads(sys.argv[3])
    good = open("pipeline.bin", "rb").read()
    shutil.copy("pipeline.bin", "good.bin")
    rng = random.Random(int(sys.argv[1]))
    bad = {}
    for i in range(int(sys.argv[2])):
        data = bytearray(good)
        kind = rng.choice(["flip", "truncate", "insert"])
        if kind == "flip":
            for _ in range(rng.randint(1, 8)):
                data[rng.randrange(len(data))] = rng.randrange(256)
        elif kind == "truncate":
            data = data[: rng.randrange(len(data))]
        else:
            at = rng.randrange(len(data))
            data[at:at] = rng.randbytes(rng.randint(1, 64))
        with open("pipeline.bin", "wb") as f:
            f.write(data)
        # What uvicorn does: import predict.py as the module `predict`, then run its lifespan,
        # which loads the model with load_model.
        try:
            module = runpy.run_path("predict.py", run_name="predict")
            module["load_model"](module["PIPELINE_FILE"])
        except SystemExit:
            continue  # the clear message
        except BaseException as e:
            bad[f"{kind} #{i}"] = repr(e)[:200]
            continue
        # It loaded: then the service must answer like the good model (a harmless flip).
        with TestClient(module["app"], raise_server_exceptions=False) as client:
            response = client.post("/predict", json=customer)
        if response.status_code != 200:
            bad[f"{kind} #{i}"] = f"started, then /predict → {response.status_code}"
    shutil.copy("good.bin", "pipeline.bin")
    print(json.dumps(bad))
    """
)


def test_damaged_pickles_end_in_the_clear_message(final: Path, tmp_path: Path) -> None:
    """Seeded byte-level mutations of a real pipeline.bin, each loaded the way uvicorn starts
    predict.py (its lifespan calls load_model): each one ends in the clear message, or the
    service works."""
    folder = trained_step(FINAL_STEP, tmp_path)
    proc = subprocess.run(
        [python(), "-c", MUTATION_SCRIPT, "6", str(MUTANTS), json.dumps(EXAMPLE_CUSTOMER)],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    bad = json.loads(proc.stdout.strip().splitlines()[-1])
    assert bad == {}, f"{len(bad)} of {MUTANTS} damaged files got past the clear message: {bad}"


def test_sigterm_under_load_finishes_in_flight_requests(final: Path, tmp_path: Path) -> None:
    folder = trained_step(FINAL_STEP, tmp_path)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = folder / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(uvicorn_cmd(port), cwd=folder, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_http(f"{base}/ping", timeout=STARTUP_SECONDS, proc=proc)
        box: dict[str, LoadResult] = {}
        ended = threading.Event()
        load = threading.Thread(
            target=lambda: box.setdefault(
                "r", run_load(base, 50, 50_000, max_seconds=60.0, stop=ended)
            )
        )
        load.start()
        time.sleep(3.0)
        terminated = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
        exited = time.monotonic()
        time.sleep(0.5)  # clients now meet a closed port
        ended.set()
        load.join(timeout=60)
    finally:
        stop(proc)
    result = box["r"]
    output = log.read_text(errors="replace")
    print(f"SIGTERM under load: exit {code} after {exited - terminated:.2f} s; {result.summary()}")

    # In flight: sent before SIGTERM, answered after it. They must all get their 200. A request
    # sent in the last 0.1 s before the signal may still sit in the kernel's buffer, never read
    # by the server, and be refused with the connection: only earlier ones must all succeed.
    before = [t for t in result.timeline if t[0] < terminated]
    in_flight = [t for t in before if t[1] > terminated and t[2] == "200"]
    settled = [t for t in before if t[0] < terminated - 0.1]
    print(f"{len(before)} sent before SIGTERM, {len(in_flight)} of them answered after it")
    assert settled, "no request was sent before SIGTERM"
    assert all(kind == "200" for _, _, kind in settled), (
        f"requests sent before SIGTERM that did not get 200: "
        f"{[t for t in settled if t[2] != '200'][:20]}"
    )
    assert in_flight, "no request was in flight when SIGTERM arrived"
    assert not [s for s in result.statuses if s != 200], result.summary()
    # uvicorn shuts down gracefully, then re-raises the signal: exit status -15 (143 in a shell)
    assert code in (0, -signal.SIGTERM), output[-2000:]
    assert exited - terminated < 15
    assert "Finished server process" in output and "Traceback" not in output, output[-3000:]


TEN_MB = 10 * 1024 * 1024


def _bodies() -> dict[str, tuple[str, bytes]]:
    one = predict_body()
    many = b"[" + b",".join([one] * (TEN_MB // (len(one) + 1))) + b"]"
    return {
        "garbage": ("/predict", b"x" * TEN_MB),
        "huge-string-field": ("/predict", b'{"gender": "' + b"a" * TEN_MB + b'"}'),
        "deep-nesting": ("/predict", b"[" * TEN_MB),
        "batch-of-20k-customers": ("/predict_batch", many),
        "batch-of-3.5M-empty-objects": ("/predict_batch", b"[" + b"{}," * (TEN_MB // 3) + b"{}]"),
    }


def _post(base: str, path: str, body: bytes) -> tuple[int, float]:
    """POST body on a raw loopback connection, reading while sending; return (status, seconds).

    A server may answer 413 before it has read the body and then close the connection; a
    client that only reads after sending everything sees just a reset. Here the body goes out
    in chunks and the answer is read as soon as it comes. Status 0: reset with no answer.
    """
    host, port = base.removeprefix("http://").split(":")
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    start = time.monotonic()
    answer = b""
    with socket.create_connection((host, int(port)), timeout=60) as sock:
        sock.sendall(head)
        view = memoryview(body)
        try:
            while view:
                readable, writable, _ = select.select([sock], [sock], [], 60)
                if readable:
                    break
                if writable:
                    sent = sock.send(view[:65536])
                    view = view[sent:]
            while (chunk := sock.recv(65536)) and b"\r\n" not in answer:
                answer += chunk
        except (ConnectionResetError, BrokenPipeError):
            pass
    seconds = time.monotonic() - start
    status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0
    return status, seconds


def _ping_while(base: str, action: Callable[[], None]) -> float:
    """Run action while pinging the service; return the slowest /ping (the event loop stall)."""
    worst = 0.0
    done = threading.Event()

    def ping() -> None:
        nonlocal worst
        while not done.is_set():
            start = time.monotonic()
            http("GET", f"{base}/ping", timeout=30)
            worst = max(worst, time.monotonic() - start)
            time.sleep(0.02)

    pinger = threading.Thread(target=ping)
    pinger.start()
    try:
        action()
    finally:
        done.set()
        pinger.join(timeout=60)
    return worst


def _post_and_ping(base: str, path: str, body: bytes) -> tuple[int, float, float]:
    """POST body; return its status and seconds, and the slowest /ping meanwhile."""
    outcome: dict[str, tuple[int, float]] = {}
    worst_ping = _ping_while(base, lambda: outcome.setdefault("r", _post(base, path, body)))
    return (*outcome["r"], worst_ping)


@pytest.fixture(scope="module")
def final_service(final: Path) -> Iterator[str]:
    with service(final) as base:
        yield base


@pytest.mark.parametrize("shape", list(_bodies()))
def test_10mb_body_is_rejected_with_4xx_and_server_stays_healthy(
    shape: str, final_service: str
) -> None:
    base = final_service
    path, body = _bodies()[shape]
    status, seconds, worst_ping = _post_and_ping(base, path, body)
    print(
        f"10 MB {shape} → {status} in {seconds:.2f} s; slowest /ping meanwhile {worst_ping:.2f} s"
    )
    assert 400 <= status < 500
    assert seconds < 10
    assert http("GET", f"{base}/ping")[0] == 200
    status, answer = http("POST", f"{base}/predict", EXAMPLE_CUSTOMER)
    assert status == 200 and isinstance(answer, dict) and "churn_probability" in answer


def test_10mb_body_is_refused_before_parsing(final_service: str) -> None:
    base = final_service
    for shape, (path, body) in _bodies().items():
        status, seconds, worst_ping = _post_and_ping(base, path, body)
        assert status == 413, f"{shape}: {status}"
        assert seconds < 0.5 and worst_ping < 0.5, (
            f"{shape}: {seconds:.2f} s, ping {worst_ping:.2f}"
        )
