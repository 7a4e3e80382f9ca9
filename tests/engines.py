"""Helpers for the container steps' tests (06-docker, 07-flyio): build, run, read a Dockerfile.

The engine is conftest's session fixture `container_engine` (../shared/ci/container-engine.sh:
Docker where a daemon runs, else podman with local stand-ins for the base images).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import re
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path

from tests.support import EXAMPLE_CUSTOMER, copy_step, dataset, free_port, python, wait_http


def base_images(dockerfile: Path) -> list[str]:
    """The images a Dockerfile pulls: FROM lines and COPY --from=IMAGE, not its own stages."""
    stages: set[str] = set()
    images: list[str] = []
    for line in dockerfile.read_text().splitlines():
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        ref = None
        if words[0].upper() == "FROM":
            args = [w for w in words[1:] if not w.startswith("--")]
            ref = args[0]
            if len(args) >= 3 and args[1].upper() == "AS":
                stages.add(args[2].lower())
        elif words[0].upper() == "COPY":
            ref = next((w.split("=", 1)[1] for w in words if w.startswith("--from=")), None)
        if ref and ref.lower() not in stages and not ref.isdigit() and ref not in images:
            images.append(ref)
    return images


def build(engine_name: str, context: Path, tag: str, timeout: float = 1200) -> None:
    """`ENGINE build -t tag context`; the build log is in the failure message."""
    result = subprocess.run(
        [engine_name, "build", "-t", tag, str(context)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if result.returncode != 0:
        log = (result.stdout + result.stderr)[-5000:]
        raise AssertionError(f"{engine_name} build of {context} failed:\n{log}")


def image_tag(name: str) -> str:
    """A fixed local tag per test image, so a rerun replaces the last one (no pile of images)."""
    return f"localhost/churn-course-test-{re.sub(r'[^a-z0-9]+', '-', name.lower())}"


@contextlib.contextmanager
def running(
    engine_name: str,
    image: str,
    container_port: int,
    ready_path: str = "/ping",
    run_args: Sequence[str] = (),
    timeout: float = 120,
) -> Iterator[tuple[str, str]]:
    """Run image detached with container_port published on 127.0.0.1, wait for ready_path 2xx.

    Yields (container name, base URL); stops and removes the container afterwards. If it never
    gets ready, the failure message carries the container's log.
    """
    port = free_port()
    name = f"churn-test-{os.getpid()}-{port}"
    publish = f"127.0.0.1:{port}:{container_port}"
    subprocess.run(
        [engine_name, "run", "-d", "--name", name, "-p", publish, *run_args, image],
        check=True,
        capture_output=True,
        timeout=120,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_http(base + ready_path, timeout=timeout)
        except AssertionError as e:
            logs = subprocess.run(
                [engine_name, "logs", name], capture_output=True, text=True, timeout=30
            )
            raise AssertionError(
                f"{e}\n--- container log ---\n{logs.stdout}{logs.stderr}"
            ) from None
        yield name, base
    finally:
        subprocess.run([engine_name, "stop", "-t", "10", name], capture_output=True, timeout=60)
        subprocess.run([engine_name, "rm", "-f", name], capture_output=True, timeout=60)


def process_uids(engine_name: str, name: str) -> list[int]:
    """Real, effective, saved and filesystem uid of the container's main process (PID 1)."""
    status = subprocess.run(
        [engine_name, "exec", name, "cat", "/proc/1/status"],
        check=True,
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout
    line = next(x for x in status.splitlines() if x.startswith("Uid:"))
    return [int(u) for u in line.split()[1:]]


def instructions(dockerfile: Path) -> list[tuple[str, str, list[str]]]:
    """(KEYWORD, arguments with continuation lines joined, the comment lines just above)."""
    result: list[tuple[str, str, list[str]]] = []
    comments: list[str] = []
    pending = ""
    for line in dockerfile.read_text().splitlines():
        stripped = line.strip()
        if pending:
            pending += " " + stripped.rstrip("\\").strip()
            if not stripped.endswith("\\"):
                keyword, _, args = pending.partition(" ")
                result.append((keyword.upper(), args, comments))
                comments, pending = [], ""
            continue
        if not stripped:
            continue
        if stripped.startswith("#"):
            comments.append(stripped)
            continue
        if stripped.endswith("\\"):
            pending = stripped.rstrip("\\").strip()
            continue
        keyword, _, args = stripped.partition(" ")
        result.append((keyword.upper(), args, comments))
        comments = []
    return result


def cmd_port(dockerfile: Path) -> tuple[str, int]:
    """(host, port) that the image's CMD passes to uvicorn."""
    cmd = next(args for kw, args, _ in instructions(dockerfile) if kw == "CMD")
    host = re.search(r'"--host",\s*"([^"]+)"', cmd)
    port = re.search(r'"--port",\s*"(\d+)"', cmd)
    assert host and port, f"CMD must pass --host and --port to uvicorn: {cmd}"
    return host.group(1), int(port.group(1))


def trained_copy(step: str, dest: Path) -> Path:
    """A scratch copy of a step with pipeline.bin trained from the course data."""
    folder = copy_step(step, dest)
    env = {**os.environ, "CHURN_DATA": str(dataset("CHURN_DATA"))}
    subprocess.run([python(), "train.py"], cwd=folder, env=env, check=True, capture_output=True)
    assert (folder / "pipeline.bin").is_file()
    return folder


def expected_probability(folder: Path) -> float:
    with (folder / "pipeline.bin").open("rb") as f:
        pipeline = pickle.load(f)
    return float(pipeline.predict_proba([EXAMPLE_CUSTOMER])[0, 1])
