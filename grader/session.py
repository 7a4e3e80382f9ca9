"""One grading run of one submission: the expensive steps, each done at most once.

Stage contracts ask this object for what they need (the training run, the model probe, the HTTP
probe, `uv lock --check`, the container build); each step runs on first use, in the sandbox,
and its result is cached for the other checks. `import sklearn` alone costs seconds, so the
whole run trains once, loads the pickles once and starts the server once.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import json
import os
import random
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grader import containers, dockerfile, dockerpolicy, environment, files
from grader.checks import CheckFailed
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
PICKLES = ("model.bin", "pipeline.bin")
BUILD_SECONDS = 1200.0  # the image build
REQUESTS_SECONDS = 120.0  # all HTTP requests to a container or a live deployment, together


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
        self._container_run: containers.Run | None = None
        self._probe_results: dict[str, Any] = {}
        self.missing_module: str | None = None  # what train.py imports that uv.lock lacks
        self.submitted_models = False  # train.py failed: the submitted pickles are graded

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
        return files.submitted(self.submission, name)

    def submitted_text(self, name: str) -> str | None:
        """A submitted file as text (None if missing), read within its size cap."""
        path = self.submitted_file(name)
        return files.read_text(path, root=self.submission) if path is not None else None

    def submitted_toml(self, name: str) -> dict[str, Any] | None:
        """A submitted TOML file, parsed (None if missing); invalid, oversized or too deeply
        nested TOML fails the check (`files.FileProblem`)."""
        path = self.submitted_file(name)
        return files.read_toml(path, root=self.submission) if path is not None else None

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

    @functools.cached_property
    def locked_env(self) -> environment.LockedEnv:
        """The submission's uv.lock, installed by the grader outside the sandbox (nothing
        built, no student code run): train.py, the pickles and the server run with it."""
        sandbox = self.sandbox
        env = environment.install(self.submission, sandbox.uv, shared=sandbox.bwrap is not None,
                                  scratch=sandbox.scratch.parent)  # fmt: skip
        for path in (env.prefix, env.base_prefix()):
            if path is not None:
                sandbox.extra_ro.append(path)
        return env

    @property
    def python(self) -> str:
        """The interpreter of student code: the locked environment's (the grader's own when
        there is no lock, it cannot be installed, or it lacks what train.py imports)."""
        env = self.locked_env
        if env.python is None or self.missing_module is not None:
            return sys.executable
        return str(env.python)

    def close(self) -> None:
        self.remove_image()
        if self._sandbox is not None:
            self._sandbox.close()
            self._sandbox = None

    # -- stage 1-2: train, then load the pickles once ----------------------------------------
    @functools.cached_property
    def train(self) -> RunResult:
        """`python train.py` in the scratch copy (the models it writes replace submitted ones).

        What does not need the models starts beside it: the probe process (it imports
        scikit-learn and FastAPI meanwhile), `uv lock --check`, the grader's own records, and
        (from the project files, read before train.py starts) the build of the Dockerfile's
        dependency steps. The image build proper starts as soon as training ends."""
        limits = Limits(wall_seconds=self.spec.train_seconds)
        kept = self.sandbox.scratch.parent / "submitted-models"  # outside the sandbox's reach
        kept.mkdir(exist_ok=True)
        for name in PICKLES:
            path = self.sandbox.scratch / name
            if path.is_file() and not path.is_symlink():
                shutil.copy2(path, kept / name)
            path.unlink(missing_ok=True)
        if 6 in self.stages:
            self._begin_build()
        training = self.sandbox.start([self.python, "train.py"], limits, self.data_env())
        if self.probe_parts:
            self._warm = self._start_probe(wait_seconds=self.spec.train_seconds)
        if 5 in self.stages and self.sandbox.uv is not None:
            self._lock_run = self._start_lock_check()
        with contextlib.suppress(Exception):  # a missing dataset fails in the checks that need it
            self.probes  # noqa: B018
        result = training.wait()
        if not result.ok and self.python != sys.executable:
            missing = environment.missing_module(result.tail(40))
            # the lock lacks a package the grader has (said in 5.3): train with the grader's
            if missing is not None and importlib.util.find_spec(missing) is not None:
                self.missing_module = missing
                if self._warm is not None:
                    self._warm.kill()
                    self._warm = self._start_probe(wait_seconds=self.spec.train_seconds)
                for name in PICKLES:
                    (self.sandbox.scratch / name).unlink(missing_ok=True)
                result = self.sandbox.start([self.python, "train.py"], limits,
                                            self.data_env()).wait()  # fmt: skip
        if not result.ok:  # grade the submitted models in the stages that need no training
            for name in PICKLES:
                if (kept / name).is_file() and not (self.sandbox.scratch / name).exists():
                    shutil.copy2(kept / name, self.sandbox.scratch / name)
                    if self.sandbox.user is not None:
                        os.lchown(self.sandbox.scratch / name, self.sandbox.user.uid, -1)
                    self.submitted_models = True
        if 6 in self.stages and self.engine is not None and (result.ok or self.submitted_models):
            self._start_build()
        return result

    def _start_probe(self, wait_seconds: float = 0.0) -> Started:
        """probe.py in the sandbox; it imports its libraries, then waits for its request."""
        limits = Limits(
            wall_seconds=wait_seconds + MODEL_SECONDS + self.options.start_seconds + 180
        )
        command = [self.python, "-I", str(PROBES / "probe.py")]
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
            # Three messages (probe.py): the server's command line, then the records to
            # score, then the nonce and the HTTP requests; each part reaches no process that
            # runs student code before that code started.
            server: dict[str, Any] = {}
            model: dict[str, Any] = {}
            request: dict[str, Any] = {"nonce": self.nonce}
            if "http" in parts:
                http = self._http_request()
                server["server"] = {"argv": http.pop("server")}
                request["http"] = http
            if "model" in parts:
                model["model"] = self._model_request()
                model["model_seconds"] = MODEL_SECONDS
            messages = [json.dumps(m) for m in (server, model, request)]
            run = process.wait("".join(f"{len(m.encode())}\n{m}" for m in messages))
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
            "server": [self.python, "-m", "uvicorn", "predict:app", "--host", "127.0.0.1",
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
        request = None
        with contextlib.suppress(CheckFailed):  # an unreadable .python-version: the default
            request = self.submitted_text(".python-version")
        python = self.sandbox.uv_interpreter((request or "").strip().split("\n")[0] or None)
        env = {"UV_PYTHON": python} if python else None
        return self.sandbox.start(command, Limits(wall_seconds=120), env)

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
        text = self.submitted_text("Dockerfile")
        return dockerfile.parse(text) if text is not None else None

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
    def _engine(self) -> tuple[containers.Engine | None, str]:
        return containers.detect(self.options.engine)

    @property
    def engine(self) -> str | None:
        """The container engine's name, or None (then build/run checks are skipped)."""
        engine = self._engine[0]
        return engine.name if engine is not None else None

    @property
    def engine_problem(self) -> str:
        """Why there is no engine, in words."""
        return self._engine[1]

    @property
    def isolation(self) -> str:
        """What applied to student code, and to the Dockerfile, for the report."""
        text = self.sandbox.isolation if self._sandbox is not None else "none needed"
        if 6 in self.stages and "_engine" in self.__dict__:
            engine = self._engine[0]
            if engine is not None:
                text += f"; container stage: {engine.describe()}"
                text += "".join(f". WARNING: {w}" for w in engine.warnings)
            elif self.options.engine != "none":
                text += f"; container stage not built: {self.engine_problem}"
        return text

    @functools.cached_property
    def dockerfile_policy(self) -> list[str]:
        """What the grader refuses to build in the Dockerfile (empty: it builds it)."""
        df = self.dockerfile
        return dockerpolicy.policy_problems(df) if df is not None else []

    def _new_run(self) -> containers.Run | None:
        """The container run of this submission's Dockerfile (None: no engine, no Dockerfile,
        or one the policy refuses: then 6.x say why and nothing is built)."""
        engine = self._engine[0]
        if engine is None:
            return None
        try:
            df = self.dockerfile
            if df is None or self.dockerfile_policy:
                return None
        except CheckFailed:  # an unreadable Dockerfile: 6.x say why
            return None
        return containers.Run(
            engine, self.nonce, self.sandbox.scratch, self.served_port,
            images=dockerpolicy.external_images(df), ignore=(*IGNORED, ".cache"),
        )  # fmt: skip

    def _begin_build(self) -> None:
        """Before training, while no student code has run: the run's folder and the build of
        the Dockerfile's dependency steps, which need no trained model (`containers.Run`)."""
        run = self._new_run()
        if run is not None:
            self._container_run = run
            run.begin()

    def _start_build(self) -> None:
        """Build the trained folder's image in the background, then start its container, as
        the build user, in a storage and a pid namespace of the run's own (`containers.Run`):
        the service starts while stages 1-5 are graded. The context is a copy of the scratch
        folder without the caches of the sandboxed steps; a Dockerfile the policy refuses,
        or a symlink leading out of the folder, is not built at all."""
        if self.context_problem:
            if self._container_run is not None:
                self._container_run.close()
                self._container_run = None
            return
        run = self._container_run or self._new_run()
        if run is not None:
            self._container_run = run
            run.start()

    @functools.cached_property
    def context_problem(self) -> str:
        """A symlink of the build context that leads outside it (the engine would follow it)."""
        root = self.sandbox.scratch
        for folder, dirs, names in os.walk(root):
            for name in [*dirs, *names]:
                path = Path(folder) / name
                if path.is_symlink() and not path.resolve().is_relative_to(root.resolve()):
                    shown = path.relative_to(root)
                    return f"{shown} is a symlink to {os.readlink(path)}, outside your folder"
        return ""

    @property
    def image_tag(self) -> str:
        return f"localhost/grader-{self.nonce}"

    @functools.cached_property
    def image(self) -> tuple[str, subprocess.CompletedProcess[str] | None]:
        """Build the image from the trained scratch copy; (tag, the build's result), the result
        None if the build did not finish in time."""
        assert self.engine is not None
        self.train  # noqa: B018 - the Dockerfile copies the models train.py wrote
        command = [self.engine, "build", "-t", self.image_tag, "."]
        if self.dockerfile_policy:
            text = "the grader does not build this Dockerfile:\n- " + "\n- ".join(
                self.dockerfile_policy
            )
            return self.image_tag, subprocess.CompletedProcess(command, 1, text, "")
        if self.context_problem:
            text = f"the grader does not build this folder: {self.context_problem}"
            return self.image_tag, subprocess.CompletedProcess(command, 1, text, "")
        if self._container_run is None:
            self._start_build()
        run = self._container_run
        if run is None:
            return self.image_tag, subprocess.CompletedProcess(command, 1, "no Dockerfile", "")
        build = run.build_result(BUILD_SECONDS)
        if build.returncode is None:
            return self.image_tag, None
        return self.image_tag, subprocess.CompletedProcess(command, build.returncode, build.log, "")

    def image_size(self) -> int | None:
        """The built image's size in bytes (None if unknown)."""
        run = self._container_run
        return run.image_size() if run is not None else None

    @functools.cached_property
    def container(self) -> HttpRun:
        """The container started after the build, its served port published on a loopback
        port; the HTTP probes, all within one overall deadline."""
        assert self.engine is not None
        _, build = self.image
        run = self._container_run
        if build is None or build.returncode != 0 or run is None:
            return HttpRun(False, 0.0, None, "the image did not build", {})
        started_at = time.monotonic()
        base = f"http://127.0.0.1:{run.host_port}"
        deadline = started_at + self.options.start_seconds + 60
        started = False
        problem = ""
        try:
            while time.monotonic() < deadline:
                ping = {"id": "ping", "path": self.spec.ping_path}
                # any answer: it serves (a missing /ping is 3.2's; /predict is still tried)
                if isinstance(http_probe.send(base, ping, 2).get("status"), int):
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
                reqs = [r for r in self.http_requests() if not r["id"].startswith("seeded")]
                answers = http_probe.run_requests(base, reqs, total_seconds=REQUESTS_SECONDS)
                responses = {r["id"]: r for r in answers}
            return HttpRun(started, seconds, None, run.server_log()[-3000:], responses,
                           problem=problem)  # fmt: skip
        finally:
            run.stop()

    def remove_image(self) -> None:
        """Stop the build and the container, delete the run's storage (image, layers, caches)."""
        if self._container_run is not None:
            self._container_run.close()
            self._container_run = None

    # -- stage 7 ----------------------------------------------------------------------------
    @functools.cached_property
    def fly(self) -> dict[str, Any] | None:
        return self.submitted_toml("fly.toml")

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
        answers = http_probe.run_requests(self.options.url, reqs, total_seconds=REQUESTS_SECONDS)
        responses = {r["id"]: r for r in answers}
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
