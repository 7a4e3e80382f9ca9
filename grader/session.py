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
import random
import re
import secrets
import shutil
import socket
import subprocess
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grader import dockerfile
from grader.probes import http_probe
from grader.sandbox import Limits, RunResult, Sandbox
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

    # -- inputs ---------------------------------------------------------------------------
    @property
    def submission(self) -> Path:
        return self.options.submission

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
        if self._sandbox is not None:
            self._sandbox.close()
            self._sandbox = None

    # -- stage 1-2: train, then load the pickles once ----------------------------------------
    @functools.cached_property
    def train(self) -> RunResult:
        """`python train.py` in the scratch copy (the models it writes replace submitted ones)."""
        limits = Limits(wall_seconds=self.spec.train_seconds)
        for name in ("model.bin", "pipeline.bin"):
            (self.sandbox.scratch / name).unlink(missing_ok=True)
        import sys

        return self.sandbox.run([sys.executable, "train.py"], limits=limits, env=self.data_env())

    @functools.cached_property
    def model_probe(self) -> dict[str, Any]:
        """Probabilities of model.bin and pipeline.bin on all probe records (from the sandbox)."""
        self.train  # noqa: B018 - the models come from this run's training
        request = {
            "nonce": self.nonce,
            "records": self.probes.all_records,
            "files": {"model": "model.bin", "pipeline": "pipeline.bin"},
        }
        run = self.sandbox.python(
            PROBES / "model_probe.py", stdin=json.dumps(request), limits=Limits(wall_seconds=180)
        )
        result = run.result(self.nonce)
        if result is None:
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

    @functools.cached_property
    def http(self) -> HttpRun:
        """Start `uvicorn predict:app` in the sandbox next to the probe; all answers as JSON."""
        import sys

        self.train  # noqa: B018 - the app loads the models trained in this run
        port = self.spec.port
        request: dict[str, Any] = {
            "nonce": self.nonce,
            "server": [sys.executable, "-m", "uvicorn", "predict:app", "--host", "127.0.0.1",
                       "--port", str(port)],
            "port": port,
            "start_seconds": self.options.start_seconds,
            "requests": self.http_requests(),
        }  # fmt: skip
        if not self.sandbox.bwrap:  # no private network: the spec's port may be taken
            request["port"] = _free_port()
            request["server"][-1] = str(request["port"])
        limits = Limits(wall_seconds=self.options.start_seconds + 120)
        run = self.sandbox.python(
            PROBES / "http_probe.py", stdin=json.dumps(request), limits=limits,
            env=self.data_env(),
        )  # fmt: skip
        result = run.result(self.nonce)
        if result is None:
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
        return self.sandbox.run(
            [self.sandbox.uv, "lock", "--check", "--offline"], limits=Limits(wall_seconds=120)
        )

    @functools.cached_property
    def lock(self) -> dict[str, Any] | None:
        path = self.submission / "uv.lock"
        if not path.is_file():
            return None
        with path.open("rb") as f:
            return tomllib.load(f)

    def locked_version(self, package: str) -> str | None:
        for pkg in (self.lock or {}).get("package", []):
            if pkg.get("name") == package:
                version = pkg.get("version")
                return str(version) if version else None
        return None

    # -- stage 6 ----------------------------------------------------------------------------
    @functools.cached_property
    def dockerfile(self) -> dockerfile.Dockerfile | None:
        path = self.submission / "Dockerfile"
        return dockerfile.parse(path.read_text(errors="replace")) if path.is_file() else None

    @functools.cached_property
    def served_port(self) -> int:
        """The port the container serves on: the Dockerfile's EXPOSE/--port, else the spec's."""
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

    @functools.cached_property
    def image(self) -> tuple[str, subprocess.CompletedProcess[str] | None]:
        """Build the image from the trained scratch copy; (tag, the build's result)."""
        assert self.engine is not None
        self.train  # noqa: B018 - the Dockerfile copies the models train.py wrote
        tag = f"localhost/grader-{self.spec.name}-{self.nonce}"
        try:
            build = subprocess.run(
                [self.engine, "build", "-t", tag, str(self.sandbox.scratch)],
                capture_output=True, text=True, timeout=1200, check=False,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            return tag, None
        return tag, build

    @functools.cached_property
    def container(self) -> HttpRun:
        """Run the image with the served port published on loopback; send the HTTP probes."""
        assert self.engine is not None
        tag, build = self.image
        if build is None or build.returncode != 0:
            return HttpRun(False, 0.0, None, "the image did not build", {})
        host_port = _free_port()
        name = f"grader-{self.nonce}"
        started_at = time.monotonic()
        run = subprocess.run(
            [self.engine, "run", "-d", "--name", name, "--memory", "2g", "--pids-limit", "512",
             "-p", f"127.0.0.1:{host_port}:{self.served_port}", tag],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        try:
            if run.returncode != 0:
                return HttpRun(False, 0.0, None, run.stderr[-3000:], {})
            base = f"http://127.0.0.1:{host_port}"
            deadline = started_at + self.options.start_seconds + 60
            started = False
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
                time.sleep(0.5)
            seconds = time.monotonic() - started_at
            responses = {}
            if started:
                reqs = [r for r in self.http_requests() if not r["id"].startswith("seeded")]
                responses = {r["id"]: r for r in http_probe.run_requests(base, reqs)}
            logs = subprocess.run(
                [self.engine, "logs", name], capture_output=True, text=True, check=False
            )
            return HttpRun(started, seconds, None, (logs.stdout + logs.stderr)[-3000:], responses)
        finally:
            subprocess.run([self.engine, "rm", "-f", name], capture_output=True, check=False)

    def remove_image(self) -> None:
        if "image" in self.__dict__ and self.engine:
            tag, _ = self.image
            subprocess.run([self.engine, "rmi", "-f", tag], capture_output=True, check=False)

    # -- stage 7 ----------------------------------------------------------------------------
    @functools.cached_property
    def fly(self) -> dict[str, Any] | None:
        path = self.submission / "fly.toml"
        if not path.is_file():
            return None
        with path.open("rb") as f:
            return tomllib.load(f)

    @property
    def fly_health_path(self) -> str | None:
        try:
            fly = self.fly
        except tomllib.TOMLDecodeError:
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
