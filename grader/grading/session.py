"""`Grading`: what the stage contracts ask about one submission.

Lookups (the submitted files, the dataset, the records, the Dockerfile, the engine) are computed
once and change nothing. Results (training, the probes, `uv lock --check`, the image, the
container, a live URL) come from the run's `Timeline`, which starts each process at most once,
when a check first needs its result."""

from __future__ import annotations

import functools
import shutil
from typing import Any

from grader import containers
from grader.environment import LockedEnv, real_uv
from grader.grading.causes import Causes
from grader.grading.requests import HttpRun, Records, draw
from grader.grading.timeline import Timeline
from grader.options import Options
from grader.sandbox import RunResult
from grader.specs import SPECS, Dataset, Spec
from grader.submission import assignment, dockerfile, dockerpolicy, files, flytoml, lockfile

BUILD_IT_YOURSELF = "Build it yourself: docker build -t app . && docker run -p 9696:9696 app"


class Grading:
    """One grading run of one submission: its lookups, and its run's results."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self.spec: Spec = options.spec
        self.uv = real_uv()
        self._timeline: Timeline | None = None
        self.causes = Causes()  # each root cause said once (grading/causes.py)

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

    def unavailable(self, needs: str | None) -> str:
        """Why this run cannot grade a check that needs `needs` ("" if it can): the same for
        every submission of the run, in words a student can read (grader/checks.py)."""
        if needs == "url" and not self.options.url:
            return "no --url given: the live deployment was not probed"
        if needs == "engine" and self.engine is None:
            return f"{self.engine_absence}: the image was not built. {BUILD_IT_YOURSELF}"
        return ""

    # -- lookups: what the upload is ----------------------------------------------------------
    @functools.cached_property
    def _upload(self) -> assignment.Verdict:
        return assignment.verdict(self.submission, self.spec, SPECS.values())

    @property
    def verdict(self) -> str:
        """One line about the upload as a whole ("" for an upload of this assignment)."""
        return self._upload.text

    @property
    def empty_upload(self) -> bool:
        """The upload holds none of the assignment's files: no check is graded."""
        return self._upload.empty

    # -- lookups: the submitted files -------------------------------------------------------
    @property
    def submission(self) -> Any:
        return self.options.submission

    def submitted_file(self, name: str) -> Any:
        """The submitted file `name` if it is a file of the submission, None if it is missing.

        A symlink that leads out of the submission fails the check that asked (`FileProblem`),
        naming the link, so the grader never parses, or quotes, a host file."""
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
    def lock(self) -> dict[str, Any] | None:
        return self.submitted_toml("uv.lock")

    def locked_version(self, package: str) -> str | None:
        return lockfile.locked_version(self.lock, package)

    @functools.cached_property
    def dockerfile(self) -> dockerfile.Dockerfile | None:
        text = self.submitted_text("Dockerfile")
        return dockerfile.parse(text) if text is not None else None

    @functools.cached_property
    def dockerfile_policy(self) -> list[str]:
        """What the grader refuses to build in the Dockerfile (empty: it builds it)."""
        df = self.dockerfile
        return dockerpolicy.policy_problems(df) if df is not None else []

    @functools.cached_property
    def served_port(self) -> int:
        """The port the container serves on: the Dockerfile's EXPOSE/--port, else the spec's."""
        try:
            port = self.dockerfile.served_port() if self.dockerfile is not None else None
        except files.FileProblem:  # a Dockerfile the checks refuse: the spec's
            port = None
        return port if port is not None else self.spec.port

    @functools.cached_property
    def fly(self) -> dict[str, Any] | None:
        return self.submitted_toml("fly.toml")

    @property
    def fly_health_path(self) -> str | None:
        """fly.toml's health-check path (stage 7 only; None without a readable fly.toml)."""
        if self.options.stage < 7:
            return None
        try:
            fly = self.fly
        except files.FileProblem:
            return None
        return flytoml.check_path(fly) if fly else None

    # -- lookups: data and records ----------------------------------------------------------
    @functools.cached_property
    def dataset(self) -> Dataset:
        return self.spec.load()

    @functools.cached_property
    def records(self) -> Records:
        """The records sent to the submission: public, and drawn from the seed."""
        return draw(self.spec, self.dataset, self.options.seed)

    # -- lookups: the container engine -------------------------------------------------------
    @functools.cached_property
    def _engine(self) -> tuple[containers.Engine | None, str]:
        return containers.detect(self.options.engine)

    @property
    def engine_found(self) -> containers.Engine | None:
        return self._engine[0] if 6 in self.stages else None

    @property
    def engine(self) -> str | None:
        """The container engine's name, or None (then build/run checks are skipped)."""
        engine = self.engine_found
        return engine.name if engine is not None else None

    @property
    def engine_problem(self) -> str:
        """Why there is no engine, in words (with the fix, for whoever runs the grader)."""
        return self._engine[1]

    @property
    def engine_absence(self) -> str:
        """Why there is no engine, in words for a student: true, and never set-up advice (that
        is `engine_problem`, for whoever runs the grader)."""
        wanted = self.options.engine
        if wanted == "none":
            return "container checks turned off for this run (--engine none)"
        names = ["docker", "podman"] if wanted == "auto" else [wanted]
        if not any(shutil.which(name) for name in names):
            return f"no container engine ({'/'.join(names)}) on the grading machine"
        return (
            "the grader could not build images here (a set-up problem of the grading machine, "
            "not of your work: tell your instructor)"
        )

    @property
    def machine(self) -> str:
        """What the grading machine lacks for this run and how to fix it ("" if nothing): for
        whoever runs the grader, never shown to students."""
        if 6 not in self.stages or "_engine" not in self.__dict__:
            return ""
        engine = self._engine[0]
        if engine is not None:
            return "".join(f"WARNING: {w}. " for w in engine.warnings).strip()
        if self.options.engine != "none":
            return f"container stage not built: {self.engine_problem}"
        return ""

    @property
    def isolation(self) -> str:
        """What applied to student code, and to the Dockerfile, for the report (students see
        it: the set-up advice of an engine problem is `machine`'s)."""
        timeline = self._timeline
        text = timeline.sandbox.isolation if timeline is not None else "none needed"
        if 6 in self.stages and "_engine" in self.__dict__:
            engine = self._engine[0]
            if engine is not None:
                text += f"; container stage: {engine.describe()}"
            elif self.options.engine != "none":
                text += f"; container stage not built: {self.engine_absence}"
        return text

    # -- results of the run (each process starts once, when first needed) --------------------
    @property
    def timeline(self) -> Timeline:
        if self._timeline is None:
            self._timeline = Timeline(self)
        return self._timeline

    @property
    def scratch(self) -> Any:
        """The scratch copy the run trains in (the submission as train.py left it)."""
        return self.timeline.sandbox.scratch

    @property
    def locked_env(self) -> LockedEnv:
        return self.timeline.locked_env

    @property
    def train(self) -> RunResult:
        return self.timeline.train()

    @property
    def missing_module(self) -> str | None:
        return self.timeline.missing_module

    @property
    def submitted_models(self) -> bool:
        return self.timeline.submitted_models

    @functools.cached_property
    def model_probe(self) -> dict[str, Any]:
        """Probabilities of model.bin and pipeline.bin on all records (from the sandbox)."""
        result, run = self.timeline.probed("model")
        if not isinstance(result, dict):
            return {"error": f"{run.describe()}\n{run.tail()}"}
        return result

    @functools.cached_property
    def http(self) -> HttpRun:
        """`uvicorn predict:app` in the sandbox next to the probe; all answers as JSON."""
        result, run = self.timeline.probed("http")
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

    @functools.cached_property
    def uv_lock_check(self) -> RunResult | None:
        """`uv lock --check --offline` in the sandbox (None without uv). An up-to-date lock
        checks offline with an empty cache; a stale one fails offline with a resolver error
        ("not found in the cache"), so any failure is reported as "out of date"."""
        return self.timeline.lock_check()

    @functools.cached_property
    def image(self) -> Any:
        """The image build's result (a CompletedProcess, its log as stdout), None if it did
        not finish in time."""
        stage = self.timeline.image()
        if stage is None:
            import subprocess

            return subprocess.CompletedProcess(["build"], 1, "no Dockerfile", "")
        return stage.image()

    def image_size(self) -> int | None:
        stage = self.timeline.stage6
        return stage.image_size() if stage is not None else None

    @functools.cached_property
    def container(self) -> HttpRun:
        return self.timeline.container()

    @functools.cached_property
    def live(self) -> HttpRun:
        assert self.options.url
        return self.timeline.live(self.options.url)

    def close(self) -> None:
        if self._timeline is not None:
            self._timeline.close()
            self._timeline = None
