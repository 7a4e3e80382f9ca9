"""One grading run of one submission: the expensive steps, each done at most once.

Stage contracts ask this object for what they need (the training run, the model probe, the HTTP
probe, `uv lock --check`, the container build); each step runs on first use, in the sandbox,
and its result is cached for the other checks. `import sklearn` alone costs seconds, so the
whole run trains once, loads the pickles once and starts the server once.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grader import dockerfile
from grader.checks import CheckFailed, fail
from grader.probes import http_probe
from grader.sandbox import IGNORED, Limits, RunResult, Sandbox, Started
from grader.specs import (
    BadRequest,
    Dataset,
    Record,
    Spec,
    public_bad_requests,
    seeded_bad_requests,
    valid_records,
)

PROBES = Path(__file__).parent / "probes"
N_PUBLIC = 20  # held-out records sent to the service in public checks
N_SEEDED = 12  # seeded valid / invalid records in hidden checks
MODEL_SECONDS = 180.0  # loading and scoring the pickles
BUILD_SECONDS = 1200.0  # the image build


@dataclass(frozen=True)
class Options:
    """What to grade and how (the CLI's arguments, or pytest's options)."""

    submission: Path
    spec: Spec
    stage: int = 7
    seed: int = 0
    url: str | None = None
    engine: str = "auto"  # auto | none | docker | podman
    start_seconds: float = 60.0
    only: frozenset[int] | None = None  # grade just these stages (each ≤ stage)


@dataclass
class HttpRun:
    """What the HTTP probe saw: did the server start, its log tail, the answers by id."""

    started: bool
    start_seconds: float
    exit_code: int | None
    server_log: str
    responses: dict[str, dict[str, Any]]
    run: RunResult | None = None
    problem: str = ""  # why it cannot answer, when the grader can tell

    def get(self, request_id: str) -> dict[str, Any]:
        return self.responses.get(request_id, {"error": "no answer recorded"})


@dataclass
class Probes:
    """The records the grader sends: public ones, and the seeded (hidden) ones."""

    example: Record
    heldout: list[Record]
    heldout_targets: list[int]
    public_sample: list[int]  # indices into heldout sent over HTTP
    seeded: list[Record]
    bad: list[BadRequest]
    seeded_bad: list[BadRequest]
    categories: dict[str, list[Any]] = field(default_factory=dict)

    @property
    def all_records(self) -> list[Record]:
        """[example] + heldout + seeded: the records the model probe scores."""
        return [self.example, *self.heldout, *self.seeded]


class Grading:
    """The cached steps of one grading run."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self.spec = options.spec
        self.nonce = secrets.token_hex(8)
        self._sandbox: Sandbox | None = None
        self._warm: Started | None = None  # probe.py, importing its libraries during training
        self._lock_run: Started | None = None
        self._build: tuple[subprocess.Popen[bytes], Path, float] | None = None
        self._probe_results: dict[str, Any] = {}

    @functools.cached_property
    def stages(self) -> frozenset[int]:
        """The stages graded in this run (1..stage, or the `only` ones)."""
        only = self.options.only
        return frozenset(s for s in range(1, self.options.stage + 1) if only is None or s in only)

    @property
    def probe_parts(self) -> frozenset[str]:
        """What the sandboxed probe process does for the graded stages: load the pickles
        (stages 1-2, and 3 compares with them), serve and answer HTTP (3, 4, 7's health path)."""
        parts = set()
        if self.stages & {1, 2, 3}:
            parts.add("model")
        if self.stages & {3, 4, 7}:
            parts.add("http")
        return frozenset(parts)

    # -- inputs ---------------------------------------------------------------------------
    @property
    def submission(self) -> Path:
        return self.options.submission

    def submitted_file(self, name: str) -> Path | None:
        """The submitted file `name` if it is a file of the submission, None if it is missing.

        The grader reads some submitted files itself (uv.lock, pyproject.toml, Dockerfile,
        fly.toml, .dockerignore): a symlink that leads out of the submission fails the check
        that asked, naming the link, so the grader never parses, or quotes, a host file."""
        path = self.submission / name
        if path.is_symlink():
            root = self.submission.resolve()
            target = path.resolve()
            if not target.is_relative_to(root):
                fail(
                    f"{name} is a symlink to a file outside your submission "
                    f"({os.readlink(path)}): commit the real file"
                )
        return path if path.is_file() else None

    def submitted_toml(self, name: str) -> dict[str, Any] | None:
        """A submitted TOML file, parsed (None if missing); invalid TOML fails the check."""
        path = self.submitted_file(name)
        if path is None:
            return None
        try:
            with path.open("rb") as f:
                return tomllib.load(f)
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            fail(f"{name} is not valid TOML: {e}")

    @functools.cached_property
    def dataset(self) -> Dataset:
        return self.spec.load()

    @functools.cached_property
    def probes(self) -> Probes:
        data = self.dataset
        test = self.spec.split(data).test
        public = random.Random(f"public-{self.spec.name}")
        seeded = random.Random(f"seed-{self.options.seed}-{self.spec.name}")
        sample = sorted(public.sample(range(len(test.records)), N_PUBLIC))
        return Probes(
            example=dict(self.spec.example),
            heldout=test.records,
            heldout_targets=test.targets,
            public_sample=sample,
            seeded=valid_records(self.spec, test, seeded, N_SEEDED),
            bad=public_bad_requests(self.spec, data),
            seeded_bad=seeded_bad_requests(self.spec, test, seeded, N_SEEDED),
            categories=self.spec.categories(data),
        )

    @property
    def sandbox(self) -> Sandbox:
        if self._sandbox is None:
            self._sandbox = Sandbox(self.submission)
            self._sandbox.extra_ro.append(self.spec.dataset_path())
        return self._sandbox

    def data_env(self) -> dict[str, str]:
        return {self.spec.env_var: str(self.spec.dataset_path())}

    def close(self) -> None:
        if self._build is not None:
            proc, log, _ = self._build
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            log.unlink(missing_ok=True)
            self._build = None
        if self._sandbox is not None:
            self._sandbox.close()
            self._sandbox = None

    # -- stage 1-2: train, then load the pickles once ----------------------------------------
    @functools.cached_property
    def train(self) -> RunResult:
        """`python train.py` in the scratch copy (the models it writes replace submitted ones).

        What does not need the models starts beside it: the probe process (it imports
        scikit-learn and FastAPI meanwhile), `uv lock --check`, the grader's own records, the
        container engine's detection. The image build starts as soon as training ends."""
        limits = Limits(wall_seconds=self.spec.train_seconds)
        for name in ("model.bin", "pipeline.bin"):
            (self.sandbox.scratch / name).unlink(missing_ok=True)
        training = self.sandbox.start([sys.executable, "train.py"], limits, self.data_env())
        if self.probe_parts:
            self._warm = self._start_probe(wait_seconds=self.spec.train_seconds)
        if 5 in self.stages and self.sandbox.uv is not None:
            self._lock_run = self._start_lock_check()
        with contextlib.suppress(Exception):  # a missing dataset fails in the checks that need it
            self.probes  # noqa: B018
        if 6 in self.stages:
            self.engine  # noqa: B018
        result = training.wait()
        if 6 in self.stages and self.engine is not None and result.ok:
            self._start_build()
        return result

    def _start_probe(self, wait_seconds: float = 0.0) -> Started:
        """probe.py in the sandbox; it imports its libraries, then waits for its request."""
        limits = Limits(
            wall_seconds=wait_seconds + MODEL_SECONDS + self.options.start_seconds + 180
        )
        command = [sys.executable, "-I", str(PROBES / "probe.py")]
        return self.sandbox.start(command, limits, self.data_env(), stdin=True, result_fd=True)

    def _probe(self, part: str) -> Any:
        """The probe process's result for `part` ("model" or "http"): one process does all
        the planned parts; a part nobody planned gets a process of its own."""
        if part not in self._probe_results:
            self.train  # noqa: B018 - the probes load the models trained in this run
            planned = part in self.probe_parts and self._warm is not None
            parts = self.probe_parts if planned else frozenset({part})
            process = self._warm if planned and self._warm is not None else self._start_probe()
            self._warm = None if planned else self._warm
            request: dict[str, Any] = {"nonce": self.nonce}
            if "model" in parts:
                request["model"] = self._model_request()
                request["model_seconds"] = MODEL_SECONDS
            if "http" in parts:
                request["http"] = self._http_request()
            run = process.wait(json.dumps(request))
            result = run.result(self.nonce) or {}
            for name in parts:
                self._probe_results[name] = (result.get(name), run)
        return self._probe_results[part]

    def _model_request(self) -> dict[str, Any]:
        return {
            "records": self.probes.all_records,
            "files": {"model": "model.bin", "pipeline": "pipeline.bin"},
        }

    @functools.cached_property
    def model_probe(self) -> dict[str, Any]:
        """Probabilities of model.bin and pipeline.bin on all probe records (from the sandbox)."""
        result, run = self._probe("model")
        if not isinstance(result, dict):
            return {"error": f"{run.describe()}\n{run.tail()}"}
        return result

    # -- stage 3-4 (and 7's health check): one server, all requests --------------------------
    def http_requests(self) -> list[dict[str, Any]]:
        spec, p = self.spec, self.probes
        reqs: list[dict[str, Any]] = [
            {"id": "ping", "method": "GET", "path": spec.ping_path},
            {"id": "example", "method": "POST", "path": spec.predict_path, "body": p.example},
            {"id": "openapi", "method": "GET", "path": "/openapi.json"},
        ]
        for i in p.public_sample:
            reqs.append(
                {"id": f"heldout-{i}", "method": "POST", "path": spec.predict_path,
                 "body": p.heldout[i]}
            )  # fmt: skip
        for i, record in enumerate(p.seeded):
            reqs.append(
                {"id": f"seeded-{i}", "method": "POST", "path": spec.predict_path, "body": record}
            )
        for i, bad in enumerate(p.bad):
            reqs.append(
                {"id": f"bad-{i}", "method": "POST", "path": spec.predict_path, "body": bad.body}
            )
        for i, bad in enumerate(p.seeded_bad):
            reqs.append(
                {"id": f"seeded-bad-{i}", "method": "POST", "path": spec.predict_path,
                 "body": bad.body}
            )  # fmt: skip
        for rid, extra in MALFORMED.items():
            reqs.append({"id": rid, "method": "POST", "path": spec.predict_path, **extra})
        health = self.fly_health_path
        if health:
            reqs.append({"id": "fly-health", "method": "GET", "path": health})
        return reqs

    def _http_request(self) -> dict[str, Any]:
        port = self.spec.port
        if not self.sandbox.bwrap:  # no private network: the spec's port may be taken
            port = _free_port()
        return {
            "server": [sys.executable, "-m", "uvicorn", "predict:app", "--host", "127.0.0.1",
                       "--port", str(port)],
            "port": port,
            "start_seconds": self.options.start_seconds,
            "requests": self.http_requests(),
        }  # fmt: skip

    @functools.cached_property
    def http(self) -> HttpRun:
        """`uvicorn predict:app` in the sandbox next to the probe; all answers as JSON."""
        result, run = self._probe("http")
        if not isinstance(result, dict):
            return HttpRun(False, run.seconds, None, run.tail(), {}, run)
        return HttpRun(
            started=bool(result["started"]),
            start_seconds=float(result["start_seconds"]),
            exit_code=result.get("exit_code"),
            server_log=str(result.get("server_log", "")),
            responses={r["id"]: r for r in result["responses"]},
            run=run,
        )

    # -- stage 5 ----------------------------------------------------------------------------
    @functools.cached_property
    def uv_lock_check(self) -> RunResult | None:
        """`uv lock --check --offline` in the sandbox (no network there: offline is honest).

        Measured: an up-to-date lock checks offline with an empty cache; a stale one fails
        offline with a resolver error ("not found in the cache") instead of "needs to be
        updated", so any failure is reported as "out of date" with uv's own words."""
        if self.sandbox.uv is None:
            return None
        if self._lock_run is None:
            self._lock_run = self._start_lock_check()
        return self._lock_run.wait()

    def _start_lock_check(self) -> Started:
        assert self.sandbox.uv is not None
        command = [self.sandbox.uv, "lock", "--check", "--offline"]
        return self.sandbox.start(command, Limits(wall_seconds=120))

    @functools.cached_property
    def lock(self) -> dict[str, Any] | None:
        return self.submitted_toml("uv.lock")

    def locked_version(self, package: str) -> str | None:
        for pkg in (self.lock or {}).get("package", []):
            if pkg.get("name") == package:
                version = pkg.get("version")
                return str(version) if version else None
        return None

    # -- stage 6 ----------------------------------------------------------------------------
    @functools.cached_property
    def dockerfile(self) -> dockerfile.Dockerfile | None:
        path = self.submitted_file("Dockerfile")
        return dockerfile.parse(path.read_text(errors="replace")) if path is not None else None

    @functools.cached_property
    def served_port(self) -> int:
        """The port the container serves on: the Dockerfile's EXPOSE/--port, else the spec's."""
        with contextlib.suppress(CheckFailed):  # a Dockerfile the checks refuse: the spec's
            if self.dockerfile is not None:
                port = self.dockerfile.served_port()
                if port is not None:
                    return port
        return self.spec.port

    @functools.cached_property
    def engine(self) -> str | None:
        """The container engine to build with, or None (then build/run checks are skipped)."""
        wanted = self.options.engine
        if wanted == "none":
            return None
        candidates = ["docker", "podman"] if wanted == "auto" else [wanted]
        for name in candidates:
            path = shutil.which(name)
            if path is None:
                continue
            with contextlib.suppress(subprocess.TimeoutExpired):
                ok = subprocess.run(
                    [path, "info"], capture_output=True, timeout=60, check=False
                ).returncode
                if ok == 0:
                    return name
        return None

    def _start_build(self) -> None:
        """Build the trained folder's image in the background, then start its container.

        One `sh` runs `ENGINE build`, prints a marker line with the build's exit code, and if
        the build passed runs the container detached, so that the service starts while stages
        1-5 are graded (`image` reads up to the marker, `container` waits for the rest).
        The context is a copy of the scratch folder owned by the grader's user, without the
        caches of the sandboxed steps: podman keys COPY layers on file owners too, so nobody's
        files could not reuse layers of an ordinary build of the same files (45 s instead of
        4 s), and run-specific caches would defeat `COPY . .` layers (see README)."""
        assert self.engine is not None
        context = Path(self.sandbox.scratch).with_name("build-context")
        shutil.rmtree(context, ignore_errors=True)
        shutil.copytree(self.sandbox.scratch, context, symlinks=True,
                        ignore=shutil.ignore_patterns(*IGNORED, ".cache"))  # fmt: skip
        log = Path(tempfile.mkstemp(prefix="grader-build-", suffix=".log")[1])
        script = (
            '"$0" build -t "$1" "$2"; rc=$?; echo; echo "$3 $rc"; [ "$rc" -eq 0 ] || exit "$rc"; '
            'exec "$0" run -d --name "$4" --memory 2g --pids-limit 512 -p "127.0.0.1::$5" "$1"'
        )
        argv = [self.engine, self.image_tag, str(context), self._build_marker,
                self.container_name, str(self.served_port)]  # fmt: skip
        with log.open("wb") as out:
            proc = subprocess.Popen(
                ["sh", "-c", script, *argv], stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
        self._build = (proc, log, time.monotonic())

    @property
    def image_tag(self) -> str:
        return f"localhost/grader-{self.spec.name}-{self.nonce}"

    @property
    def container_name(self) -> str:
        return f"grader-{self.nonce}"

    @property
    def _build_marker(self) -> str:
        return f"GRADER-BUILD-EXIT-{self.nonce}"

    def _build_output(self) -> tuple[str, int | None, str]:
        """(build output, build exit code or None if unknown, what came after the marker)."""
        assert self._build is not None
        text = self._build[1].read_text(errors="replace")
        before, found, after = text.partition(self._build_marker)
        if not found:
            return text, None, ""
        code, _, rest = after.strip().partition("\n")
        return before, int(code) if code.strip().isdigit() else None, rest

    @functools.cached_property
    def image(self) -> tuple[str, subprocess.CompletedProcess[str] | None]:
        """Build the image from the trained scratch copy; (tag, the build's result)."""
        assert self.engine is not None
        self.train  # noqa: B018 - the Dockerfile copies the models train.py wrote
        tag = self.image_tag
        if self._build is None:
            self._start_build()
        assert self._build is not None
        proc, _, started = self._build
        while True:  # until the marker line (or the end of `sh`)
            output, code, _ = self._build_output()
            if code is not None or proc.poll() is not None:
                break
            if time.monotonic() > started + BUILD_SECONDS:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                return tag, None
            time.sleep(0.2)
        output, code, _ = self._build_output()
        if code is None:  # `sh` ended without the marker: killed
            code = proc.returncode if proc.returncode else 1
        command = [self.engine, "build", "-t", tag, "."]
        return tag, subprocess.CompletedProcess(command, code, output, "")

    @functools.cached_property
    def container(self) -> HttpRun:
        """The container started after the build, with the served port published on a
        loopback port of the engine's choice; send the HTTP probes."""
        assert self.engine is not None
        _, build = self.image
        if build is None or build.returncode != 0:
            return HttpRun(False, 0.0, None, "the image did not build", {})
        assert self._build is not None
        proc, _, _ = self._build
        started_at = time.monotonic()
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        name = self.container_name
        try:
            if proc.returncode != 0:
                return HttpRun(False, 0.0, None, self._build_output()[2][-3000:], {})
            port = subprocess.run(
                [self.engine, "port", name, f"{self.served_port}/tcp"],
                capture_output=True, text=True, timeout=60, check=False,
            )  # fmt: skip
            found = re.search(r"127\.0\.0\.1:(\d+)", port.stdout)
            if not found:
                return HttpRun(False, 0.0, None, f"no published port: {port.stderr[-500:]}", {})
            host_port = int(found.group(1))
            base = f"http://127.0.0.1:{host_port}"
            deadline = started_at + self.options.start_seconds + 60
            started = False
            problem = ""
            while time.monotonic() < deadline:
                answer = http_probe.send(base, {"id": "ping", "path": self.spec.ping_path}, 2)
                if answer.get("status") == 200:
                    started = True
                    break
                state = subprocess.run(
                    [self.engine, "inspect", "-f", "{{.State.Running}}", name],
                    capture_output=True, text=True, check=False,
                )  # fmt: skip
                if state.stdout.strip() == "false":
                    break
                logs = subprocess.run([self.engine, "logs", name], capture_output=True,
                                      text=True, check=False)  # fmt: skip
                loopback = LOOPBACK_ONLY.search(logs.stdout + logs.stderr)
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
                reqs = [r for r in self.http_requests() if not r["id"].startswith("seeded")]
                responses = {r["id"]: r for r in http_probe.run_requests(base, reqs)}
            logs = subprocess.run(
                [self.engine, "logs", name], capture_output=True, text=True, check=False
            )
            return HttpRun(started, seconds, None, (logs.stdout + logs.stderr)[-3000:], responses,
                           problem=problem)  # fmt: skip
        finally:
            self._remove_container()

    def _remove_container(self) -> None:
        if self.engine:
            subprocess.run([self.engine, "rm", "-f", self.container_name], capture_output=True,
                           check=False)  # fmt: skip

    def remove_image(self) -> None:
        if self._build is not None or "image" in self.__dict__:
            build = self._build[0] if self._build is not None else None
            if build is not None and build.poll() is None:  # interrupted: stop the build first
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(build.pid, signal.SIGKILL)
                build.wait()
            if self.engine:
                self._remove_container()
                subprocess.run([self.engine, "rmi", "-f", self.image_tag], capture_output=True,
                               check=False)  # fmt: skip

    # -- stage 7 ----------------------------------------------------------------------------
    @functools.cached_property
    def fly(self) -> dict[str, Any] | None:
        path = self.submitted_file("fly.toml")
        if path is None:
            return None
        with path.open("rb") as f:
            return tomllib.load(f)

    @property
    def fly_health_path(self) -> str | None:
        try:
            fly = self.fly
        except (tomllib.TOMLDecodeError, UnicodeDecodeError, CheckFailed):
            return None
        if not fly or self.options.stage < 7:
            return None
        return fly_check_path(fly)

    @functools.cached_property
    def live(self) -> HttpRun:
        """The same requests, sent to a live deployment (`--url`) from the grader process."""
        assert self.options.url
        started = time.monotonic()
        reqs = [r for r in self.http_requests() if r["id"] != "fly-health"]
        responses = {r["id"]: r for r in http_probe.run_requests(self.options.url, reqs)}
        ok = any("status" in r for r in responses.values())
        return HttpRun(ok, time.monotonic() - started, None, "", responses)


# A server's start-up line that says it listens on loopback only (uvicorn, gunicorn, flask).
LOOPBACK_ONLY = re.compile(
    r"(?:running on|listening at:?)\s+https?://(127\.0\.0\.1|localhost|\[::1\])", re.I
)

MALFORMED: dict[str, dict[str, Any]] = {
    "malformed-json": {"raw": "{this is not json"},
    "malformed-empty": {"body": {}},
    "malformed-list": {"body": [1, 2, 3]},
    "malformed-null": {"body": None},
}


def fly_check_path(fly: dict[str, Any]) -> str | None:
    """The first HTTP health-check path in fly.toml (http_service.checks or services.*)."""
    candidates: list[Any] = []
    service = fly.get("http_service")
    if isinstance(service, dict):
        candidates += service.get("checks") or []
    for svc in fly.get("services") or []:
        if isinstance(svc, dict):
            candidates += svc.get("http_checks") or []
    checks = fly.get("checks")
    if isinstance(checks, dict):
        candidates += list(checks.values())
    for check in candidates:
        if isinstance(check, dict) and isinstance(check.get("path"), str):
            return str(check["path"])
    return None


def fly_internal_ports(fly: dict[str, Any]) -> list[int]:
    ports = []
    service = fly.get("http_service")
    if isinstance(service, dict) and "internal_port" in service:
        ports.append(service["internal_port"])
    for svc in fly.get("services") or []:
        if isinstance(svc, dict) and "internal_port" in svc:
            ports.append(svc["internal_port"])
    return [int(p) for p in ports if isinstance(p, int) or re.fullmatch(r"\d+", str(p))]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
