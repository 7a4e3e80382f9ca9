"""Stage 6's run: the image of the trained folder, built in the background, then started and
probed from the grader (`ContainerStage`)."""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

from grader.containers import BUILD_SECONDS, ContainerRun, Engine
from grader.grading.requests import PING, HttpRun, Request
from grader.probes import http_probe
from grader.submission import dockerfile, dockerpolicy

REQUESTS_SECONDS = 120.0  # all HTTP requests to a container, together
# A server's start-up line that says it listens on loopback only (uvicorn, gunicorn, flask).
LOOPBACK_ONLY = re.compile(
    r"(?:running on|listening at:?)\s+https?://(127\.0\.0\.1|localhost|\[::1\])", re.I
)


def context_problem(root: Path) -> str:
    """A symlink of the build context that leads outside it (the engine would follow it)."""
    for folder, dirs, names in os.walk(root):
        for name in [*dirs, *names]:
            path = Path(folder) / name
            if path.is_symlink() and not path.resolve().is_relative_to(root.resolve()):
                shown = path.relative_to(root)
                return f"{shown} is a symlink to {os.readlink(path)}, outside your folder"
    return ""


class ContainerStage:
    """One submission's image and container: `begin()` before training (the dependency steps),
    `start()` once trained, then `image()`, `container()`, `close()`."""

    def __init__(
        self,
        engine: Engine,
        run_id: str,
        scratch: Path,
        df: dockerfile.Dockerfile | None,
        policy: list[str],
        served_port: int,
        ignore: tuple[str, ...],
    ) -> None:
        self.engine = engine
        self.scratch = scratch
        self.policy = policy
        self.served_port = served_port
        self._run: ContainerRun | None = None
        self._image: subprocess.CompletedProcess[str] | None = None
        self._built = False
        self._started = False
        if df is not None and not policy:
            self._run = ContainerRun(
                engine,
                run_id,
                scratch,
                served_port,
                images=dockerpolicy.external_images(df),
                ignore=ignore,
            )

    def begin(self) -> None:
        """Before training, while no student code has run: the run's folder and the build of
        the Dockerfile's dependency steps, which need no trained model."""
        if self._run is not None:
            self._run.begin()

    def start(self) -> None:
        """Build the trained folder's image in the background, then start its container, as
        the build user, in a storage and a pid namespace of the run's own: the service starts
        while stages 1-5 are graded. A symlink leading out of the folder: nothing is built."""
        if self._run is None:
            return
        if context_problem(self.scratch):
            self._run.close()
            self._run = None
            return
        self._run.start()
        self._started = True

    def image(self) -> subprocess.CompletedProcess[str] | None:
        """The build's result (its log as stdout); None if it did not finish in time."""
        if self._built:
            return self._image
        self._built = True
        command = [self.engine.name, "build", "."]
        if self.policy:
            text = "the grader does not build this Dockerfile:\n- " + "\n- ".join(self.policy)
            self._image = subprocess.CompletedProcess(command, 1, text, "")
        elif context_problem(self.scratch):
            text = f"the grader does not build this folder: {context_problem(self.scratch)}"
            self._image = subprocess.CompletedProcess(command, 1, text, "")
        elif self._run is None:
            self._image = subprocess.CompletedProcess(command, 1, "no Dockerfile", "")
        elif not self._started:  # no trained model to copy (1.1 says why)
            text = "not built: train.py did not complete and no model was submitted (see 1.1)"
            self._image = subprocess.CompletedProcess(command, 1, text, "")
        else:
            build = self._run.build_result(BUILD_SECONDS)
            if build.returncode is not None:
                self._image = subprocess.CompletedProcess(command, build.returncode, build.log, "")
        return self._image

    def image_size(self) -> int | None:
        """The built image's size in bytes (None if unknown)."""
        return self._run.image_size() if self._run is not None else None

    def container(self, ping_path: str, requests: list[Request], start_seconds: float) -> HttpRun:
        """The container started after the build, its served port published on a loopback
        port; the HTTP requests, all within one overall deadline."""
        build = self.image()
        run = self._run
        if build is None or build.returncode != 0 or run is None:
            return HttpRun(False, 0.0, None, "the image did not build", {})
        started_at = time.monotonic()
        base = f"http://127.0.0.1:{run.host_port}"
        deadline = started_at + start_seconds + 60
        started = False
        problem = ""
        try:
            while time.monotonic() < deadline:
                # any answer: it serves (a missing /ping is 3.2's; /predict is still tried)
                ping = http_probe.send(base, {"id": PING, "path": ping_path}, 2)
                if isinstance(ping.get("status"), int):
                    started = True
                    break
                if not run.running:
                    break
                loopback = LOOPBACK_ONLY.search(run.server_log()[-20_000:])
                if loopback:  # up, but unreachable from outside: no use waiting
                    problem = (
                        f"the server in the container listens on {loopback.group(1)} only, "
                        "which nothing outside the container can reach: serve on 0.0.0.0 "
                        "(`--host 0.0.0.0`, see 6.7)"
                    )
                    break
                time.sleep(0.5)
            seconds = time.monotonic() - started_at
            responses = {}
            if started:
                answers = http_probe.run_requests(
                    base, [dict(r) for r in requests], total_seconds=REQUESTS_SECONDS
                )
                responses = {r["id"]: r for r in answers}
            log = run.server_log()[-3000:]
            return HttpRun(started, seconds, None, log, responses, problem=problem)
        finally:
            run.stop()

    def close(self) -> None:
        """Stop the build and the container, delete the run's storage (image, layers, caches)."""
        if self._run is not None:
            self._run.close()
            self._run = None
