"""The schedule of one grading, in the order it runs.

`import sklearn` costs seconds in every process and train.py is the longest step, so a run
overlaps what does not depend on the trained models (grader/INTERNALS.md, "How one run spends
its time"). `Timeline.train()` reads top to bottom: install the lock, make the sandbox, keep the
submitted pickles, begin the image's dependency steps, start train.py, the probe and `uv lock
--check` beside it, wait, retrain with the grader's packages if the lock lacks a module, put the
submitted pickles back if training failed, start the image build."""

from __future__ import annotations

import contextlib
import importlib.util
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Protocol

from grader import environment
from grader.containers import Engine
from grader.environment import trust
from grader.grading import probe, view
from grader.grading.requests import HttpRun, Records, http_requests, public_only
from grader.grading.stage6 import ContainerStage
from grader.options import Options
from grader.probes import http_probe
from grader.sandbox import NOT_COPIED, Limits, Process, RunResult, Sandbox, bwrap_available
from grader.specs import Spec
from grader.submission.dockerfile import Dockerfile


class Lookups(Protocol):
    """What the schedule reads of the grading (grader.grading.session.Grading has it all)."""

    options: Options
    spec: Spec
    uv: str | None

    @property
    def submission(self) -> Path: ...
    @property
    def stages(self) -> frozenset[int]: ...
    @property
    def probe_parts(self) -> frozenset[str]: ...
    @property
    def records(self) -> Records: ...
    @property
    def engine_found(self) -> Engine | None: ...
    @property
    def dockerfile(self) -> Dockerfile | None: ...
    @property
    def dockerfile_policy(self) -> list[str]: ...
    @property
    def served_port(self) -> int: ...
    @property
    def fly_health_path(self) -> str | None: ...
    def submitted_text(self, name: str) -> str | None: ...


PICKLES = ("model.bin", "pipeline.bin")
REQUESTS_SECONDS = 120.0  # all HTTP requests to a live deployment, together


class Timeline:
    """The processes of one grading and their results, each started at most once."""

    def __init__(self, grading: Lookups) -> None:
        self.g = grading
        self.nonce = secrets.token_hex(8)  # authenticates the probe's result; never an id
        self.run_id = secrets.token_hex(6)  # names the run's image and container
        # Installed before the sandbox exists: it decides what the sandbox shows. Shared by
        # identical locks only where the sandbox makes it read-only (bubblewrap).
        shared = bwrap_available() is not None
        self._own_env = None if shared else Path(tempfile.mkdtemp(prefix="grader-env-"))
        self.locked_env = environment.install(grading.submission, grading.uv, shared, self._own_env)
        self.uv_python = self._uv_python() if 5 in grading.stages else None
        dataset = None
        with contextlib.suppress(Exception):  # a missing dataset fails in the checks that need it
            dataset = grading.spec.dataset_path()
        visible = view.visible(
            dataset,
            self.locked_env,
            grading.uv,
            Path(self.uv_python[1]) if self.uv_python else None,
        )
        self.sandbox = Sandbox(grading.submission, visible, grading.uv)
        self.missing_module: str | None = None  # what train.py imports that uv.lock lacks
        self.submitted_models = False  # train.py failed: the submitted pickles are graded
        self.stage6: ContainerStage | None = None
        self._warm: Process | None = None  # probe.py, importing its libraries during training
        self._lock_run: Process | None = None
        self._training: RunResult | None = None
        self._probed: dict[str, tuple[Any, RunResult]] = {}

    @property
    def python(self) -> str:
        """The interpreter of student code: the locked environment's (the grader's own when
        there is no lock, it cannot be installed, or it lacks what train.py imports)."""
        env = self.locked_env
        if env.python is None or self.missing_module is not None:
            return sys.executable
        return str(env.python)

    def _uv_python(self) -> tuple[str, Path] | None:
        request = None
        with contextlib.suppress(Exception):  # an unreadable .python-version: the default
            request = self.g.submitted_text(".python-version")
        return environment.uv_interpreter(self.g.uv, (request or "").strip().split("\n")[0] or None)

    def data_env(self) -> dict[str, str]:
        spec = self.g.spec
        with contextlib.suppress(Exception):
            return {spec.env_var: str(spec.dataset_path())}
        return {}

    # -- stages 1-2 (and what overlaps training) ----------------------------------------------
    def train(self) -> RunResult:
        """`python train.py` in the scratch copy, and what starts beside it (module docstring)."""
        if self._training is not None:
            return self._training
        g, sandbox = self.g, self.sandbox
        limits = Limits(wall_seconds=g.spec.train_seconds)
        kept = self._keep_submitted_pickles()
        if 6 in g.stages:
            self._begin_image()
        training = sandbox.start([self.python, "train.py"], limits, self.data_env())
        if g.probe_parts:
            self._warm = self._start_probe(wait_seconds=g.spec.train_seconds)
        if 5 in g.stages and g.uv is not None:
            self._lock_run = self._start_lock_check()
        with contextlib.suppress(Exception):  # the grader's own records, meanwhile
            g.records  # noqa: B018
        result = training.wait()
        if not result.ok and self.python != sys.executable:
            result = self._retrain_if_module_missing(result, limits)
        if not result.ok:  # grade the submitted models in the stages that need no training
            self._restore(kept)
        if self.stage6 is not None and (result.ok or self.submitted_models):
            self.stage6.start()
        self._training = result
        return result

    def _keep_submitted_pickles(self) -> Path:
        """Move the submitted pickles out of the sandbox's reach: train.py writes its own."""
        kept = self.sandbox.scratch.parent / "submitted-models"
        kept.mkdir(exist_ok=True)
        for name in PICKLES:
            path = self.sandbox.scratch / name
            if path.is_file() and not path.is_symlink():
                shutil.copy2(path, kept / name)
            path.unlink(missing_ok=True)
        return kept

    def _retrain_if_module_missing(self, result: RunResult, limits: Limits) -> RunResult:
        """The lock lacks a package the grader has (said in 5.3): train with the grader's."""
        missing = environment.missing_module(result.tail(40))
        if missing is None or importlib.util.find_spec(missing) is None:
            return result
        self.missing_module = missing
        if self._warm is not None:
            self._warm.kill()
            self._warm = self._start_probe(wait_seconds=self.g.spec.train_seconds)
        for name in PICKLES:
            (self.sandbox.scratch / name).unlink(missing_ok=True)
        return self.sandbox.start([self.python, "train.py"], limits, self.data_env()).wait()

    def _restore(self, kept: Path) -> None:
        """Put the submitted pickles back, for the stages that grade them untrained."""
        for name in PICKLES:
            if (kept / name).is_file() and not (self.sandbox.scratch / name).exists():
                shutil.copy2(kept / name, self.sandbox.scratch / name)
                self.sandbox.give(self.sandbox.scratch / name)
                self.submitted_models = True

    # -- the probe: the pickles (stages 1-3) and the server (3, 4, 7) ---------------------------
    def _start_probe(self, wait_seconds: float = 0.0) -> Process:
        seconds = wait_seconds + probe.MODEL_SECONDS + self.g.options.start_seconds + 180
        own = self.python == sys.executable
        trusted = trust.of_grader() if own else self.locked_env.probe_trust()
        return probe.start(self.sandbox, self.python, trusted, self.data_env(), seconds)

    def probed(self, part: str) -> tuple[Any, RunResult]:
        """The probe process's result for `part` ("model" or "http"), and how it ended: one
        process does all the planned parts; a part nobody planned gets a process of its own."""
        if part not in self._probed:
            self.train()  # the probes load the models trained in this run
            planned = part in self.g.probe_parts and self._warm is not None
            parts = self.g.probe_parts if planned else frozenset({part})
            process = self._warm if planned and self._warm is not None else self._start_probe()
            self._warm = None if planned else self._warm
            server = http = model = None
            if "http" in parts:
                server, http = self._http_request()
            if "model" in parts:
                model = {
                    "records": self.g.records.all_records,
                    "files": {"model": "model.bin", "pipeline": "pipeline.bin"},
                }
            result, run = probe.ask(process, self.nonce, server, model, http)
            for name in parts:
                self._probed[name] = (result.get(name), run)
        return self._probed[part]

    def _http_request(self) -> tuple[list[str], dict[str, Any]]:
        """The server's command line, and the HTTP part of the probe's request."""
        g = self.g
        port = g.spec.port
        if not self.sandbox.bwrap:  # no private network: the spec's port may be taken
            port = http_probe.free_port()
        server = [
            self.python,
            "-m",
            "uvicorn",
            "predict:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ]
        requests = http_requests(g.spec, g.records, g.fly_health_path)
        request = {"port": port, "start_seconds": g.options.start_seconds, "requests": requests}
        return server, request

    # -- stage 5 ----------------------------------------------------------------------------
    def _start_lock_check(self) -> Process:
        assert self.g.uv is not None
        command = [self.g.uv, "lock", "--check", "--offline"]
        env = {"UV_PYTHON": self.uv_python[0]} if self.uv_python else None
        return self.sandbox.start(command, Limits(wall_seconds=120), env)

    def lock_check(self) -> RunResult | None:
        """`uv lock --check --offline` in the sandbox (no network there: offline is honest)."""
        if self.g.uv is None:
            return None
        if self._lock_run is None:
            self._lock_run = self._start_lock_check()
        return self._lock_run.wait()

    # -- stage 6 ----------------------------------------------------------------------------
    def _begin_image(self) -> None:
        """Before training: the container stage, when there is an engine and a Dockerfile the
        policy lets through (else 6.x say why and nothing is built)."""
        g = self.g
        engine = g.engine_found
        if engine is None:
            return
        try:
            df, policy, port = g.dockerfile, g.dockerfile_policy, g.served_port
        except Exception:  # an unreadable Dockerfile: 6.x say why
            return
        if df is None:
            return
        ignore = (*NOT_COPIED, ".cache")
        self.stage6 = ContainerStage(
            engine, self.run_id, self.sandbox.scratch, df, policy, port, ignore
        )
        self.stage6.begin()

    def image(self) -> ContainerStage | None:
        """The container stage once training ended (its image is built in the background)."""
        self.train()
        if self.stage6 is None and self.g.engine_found is not None:
            self._begin_image()
            if self.stage6 is not None and (self.train().ok or self.submitted_models):
                self.stage6.start()
        return self.stage6

    def container(self) -> HttpRun:
        stage = self.image()
        if stage is None:
            return HttpRun(False, 0.0, None, "the image did not build", {})
        g = self.g
        reqs = public_only(http_requests(g.spec, g.records, g.fly_health_path))
        return stage.container(g.spec.ping_path, reqs, g.options.start_seconds)

    # -- stage 7 ----------------------------------------------------------------------------
    def live(self, url: str) -> HttpRun:
        """The same requests (the public ones), sent to a live deployment from the grader."""
        started = time.monotonic()
        g = self.g
        reqs = public_only(http_requests(g.spec, g.records, None))
        answers = http_probe.run_requests(
            url, [dict(r) for r in reqs], total_seconds=REQUESTS_SECONDS
        )
        responses = {r["id"]: r for r in answers}
        ok = any("status" in r for r in responses.values())
        return HttpRun(ok, time.monotonic() - started, None, "", responses)

    def close(self) -> None:
        if self.stage6 is not None:
            self.stage6.close()
            self.stage6 = None
        self.sandbox.close()
        self.locked_env.close()
        if self._own_env is not None:
            shutil.rmtree(self._own_env, ignore_errors=True)
