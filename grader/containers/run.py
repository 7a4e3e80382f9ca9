"""`ContainerRun`: one submission's image, built from its trained folder, then run, in a folder,
a storage and a process tree of its own."""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from grader.containers import store
from grader.containers.commands import commands, storage
from grader.containers.engine import RUNS, Engine, ensure_images, helpers, run_quiet
from grader.probes.http_probe import free_port
from grader.sandbox import Tail
from grader.submission import dockerfile, dockerpolicy

BUILD_SECONDS = 1200.0  # the image build
LOG_KEPT = 200_000  # bytes of the build log and of the server log kept (the tails)
SCRIPT = "build_and_serve.sh"


def _die_with_grader() -> None:
    """In the child before exec: SIGKILL when the grader dies (Linux)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG


@dataclass
class Build:
    """How the build ended: exit code (None: did not finish in time) and its log's tail."""

    returncode: int | None
    log: str
    seconds: float = 0.0


@dataclass
class ContainerRun:
    """One submission's image: built from `source` (copied), then run, in a folder of its own.

    `begin()` (before training: the dependency steps), `start()` (after training: the image
    and its container), `build_result()`, `stop()`, `close()`."""

    engine: Engine
    run_id: str
    source: Path
    port: int  # the port the container serves on
    images: list[str] = field(default_factory=list)  # base images to make available
    ignore: tuple[str, ...] = ()
    host_port: int = 0
    started_at: float = 0.0
    folder: Path | None = None
    refused: str = ""  # why the Dockerfile found after training was not built
    _proc: subprocess.Popen[bytes] | None = None
    _build_log: Tail | None = None
    _server_log: Tail | None = None
    _lock_fd: int | None = None
    _store: store.Claim | None = None  # the dependency store this build reads (or fills)

    @property
    def tag(self) -> str:
        return f"localhost/grader-{self.run_id}"

    @property
    def name(self) -> str:
        return f"grader-{self.run_id}"

    @property
    def marker(self) -> str:
        return f"GRADER-BUILD-EXIT-{self.run_id}"

    @property
    def deps_marker(self) -> str:
        return f"GRADER-DEPS-EXIT-{self.run_id}"

    @property
    def deps(self) -> Path | None:
        """The dependency store this build reads (or fills)."""
        return self._store.path if self._store is not None else None

    def begin(self) -> None:
        """What needs no trained model, started before training: the run's folder and, with
        podman, the build of the dependency steps when no build has filled their store yet
        (from the project files only, read before any student code runs). The script then
        waits for `start`'s word."""
        folder = self._make_folder()
        filling = self._store is not None and self._store.filling
        ensure_images(self.engine, self.images)
        self.host_port = free_port()
        argv_dir = folder / "argv"  # the grader's: readable, not writable, by the build user
        argv_dir.mkdir(mode=0o755)
        made = commands(
            self.engine, folder, self.run_id, self.port, self.host_port, self.deps, filling
        )
        for name, words in made.by_name().items():
            (argv_dir / name).write_bytes(b"".join(w.encode() + b"\0" for w in words))
        # The script's text, not its path: the build user may not read the grader's folder.
        script = resources.files("grader.containers").joinpath(SCRIPT).read_text()
        read_end, write_end = os.pipe()
        argv = ["bash", "-c", script, SCRIPT, self.marker, self.deps_marker]
        argv += [str(write_end), str(argv_dir)]
        self.started_at = time.monotonic()
        # What this run reads and must not change: the base images, a filled dependency store.
        read_only = [Path(self.engine.store)] if self.engine.store else []
        if self._store is not None and not self._store.filling:
            read_only.append(self._store.path)
        self._proc = subprocess.Popen(
            self.engine.wrap(argv, read_only),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            pass_fds=(write_end,),
            env=self.engine.env(folder),
            cwd=str(folder),
            start_new_session=True,
            preexec_fn=_die_with_grader,
        )
        os.close(write_end)
        assert self._proc.stdout is not None
        self._build_log = Tail(self._proc.stdout, LOG_KEPT)
        self._server_log = Tail(os.fdopen(read_end, "rb"), LOG_KEPT)

    def _make_folder(self) -> Path:
        """The run's folder under RUNS (locked while the run lives), the dependency store it
        reads or fills, and, as root, what the build user must own."""
        helpers()  # makes RUNS, the grader's own folder
        store.sweep()
        self.folder = folder = Path(tempfile.mkdtemp(prefix=f"run-{os.getpid()}-", dir=RUNS))
        self._lock_fd = store.lock(folder)
        if self.engine.name == "docker":  # the daemon keeps what a killed grader leaves
            (folder / store.DOCKER_RUN_FILE).write_text(self.run_id)
        (folder / "xdg").mkdir(mode=0o700)
        (folder / "deps-context").mkdir()
        self._store = store.claim(self.source, folder / "deps-context", self.engine)
        if self.engine.user is not None:
            for name in ("xdg", "deps-context", "deps.Dockerfile"):
                self._give(folder / name)
            os.chown(folder, self.engine.uid or 0, self.engine.uid or 0)
            if self._store is not None and self._store.filling:
                os.chown(self._store.path, self.engine.uid or 0, self.engine.uid or 0)
        folder.chmod(0o700)
        return folder

    def start(self) -> None:
        """Copy the (trained) context, then let the script build the image and run it. The
        dependency store is used only if the steps and the files they read are still the
        ones it was keyed with (training may have changed them)."""
        if self._proc is None:
            self.begin()
        assert self.folder is not None and self._proc is not None and self._proc.stdin
        context = self.folder / "context"
        shutil.copytree(
            self.source, context, symlinks=True, ignore=shutil.ignore_patterns(*self.ignore)
        )
        if self.engine.user is not None:
            self._give(context)
        mode = "fresh"
        text = store.read_dockerfile(context)  # what is built: checked again (training ran)
        problems = dockerpolicy.policy_problems(dockerfile.parse(text or ""))
        if text is None or problems:
            mode = "refused"
            self.refused = "the grader does not build this Dockerfile:\n- " + "\n- ".join(
                problems or ["the Dockerfile is missing or unreadable after training"]
            )
        elif self._store is not None:
            steps = dockerpolicy.dependency_steps(text)
            if steps is not None and store.deps_key(context, steps, self.engine) == self._store.key:
                mode = "shared"
        with contextlib.suppress(OSError):
            self._proc.stdin.write(f"{mode}\n".encode())
            self._proc.stdin.close()

    def _give(self, path: Path) -> None:
        """`path` and everything under it to the build user (links themselves, not targets)."""
        uid = self.engine.uid or 0
        for root, dirs, names in os.walk(path):
            for entry in [*dirs, *names]:
                os.lchown(Path(root) / entry, uid, uid)
        with contextlib.suppress(FileNotFoundError):
            os.lchown(path, uid, uid)

    # -- build ----------------------------------------------------------------------------
    def build_result(self, seconds: float = BUILD_SECONDS) -> Build:
        """Wait for the build (up to `seconds` from its start); its exit code and log."""
        assert self._proc is not None and self._build_log is not None
        if self.refused:
            return Build(1, self.refused)
        while True:
            text = self._build_log.text()
            before, found, after = text.rpartition(self.marker)
            if found:
                code = after.strip().split("\n", 1)[0].strip()
                self._deps_filled(before)
                before = re.sub(r"\nGRADER-IMAGE-SIZE .*", "", before)
                before = re.sub(rf"\n{self.deps_marker} -?\d+\n", "\n", before)
                return Build(
                    int(code) if code.lstrip("-").isdigit() else 1,
                    before,
                    time.monotonic() - self.started_at,
                )
            if self._proc.poll() is not None:
                time.sleep(0.2)  # the last bytes of the pipe
                text = self._build_log.text()
                if self.marker in text:
                    continue
                return Build(self._proc.returncode or 1, text, time.monotonic() - self.started_at)
            if time.monotonic() > self.started_at + seconds:
                self.stop()
                return Build(None, self._build_log.text(), time.monotonic() - self.started_at)
            time.sleep(0.2)

    def _deps_filled(self, log: str) -> None:
        """Mark the dependency store done when this run filled it (its build exited 0)."""
        if self._store is not None and f"{self.deps_marker} 0\n" in log:
            self._store.filled()

    # -- serve ----------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def server_log(self) -> str:
        return self._server_log.text() if self._server_log is not None else ""

    def image_size(self) -> int | None:
        """The built image's size in bytes, as the engine counts it (measured after the build,
        in the run's own namespace)."""
        if self._build_log is None:
            return None
        found = re.search(r"GRADER-IMAGE-SIZE (\d+)", self._build_log.text())
        return int(found.group(1)) if found else None

    # -- cleanup --------------------------------------------------------------------------
    def stop(self) -> None:
        """Kill the whole process tree (build, RUN steps, conmon, container)."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=30)
        if proc is not None and self.engine.name == "podman" and os.geteuid() != 0:
            # without a pid namespace conmon outlives the tree: remove the container by name
            self._engine_cmd(["rm", "-f", self.name])

    def _engine_cmd(self, args: list[str]) -> None:
        if self.folder is not None:
            run_quiet(
                self.engine.wrap([self.engine.path, *storage(self.engine, self.folder), *args]),
                env=self.engine.env(self.folder),
                cwd="/",
            )

    def close(self) -> None:
        """Stop everything and delete the run's folder (storage, context, caches)."""
        if self._build_log is not None:  # the dependency steps may have been built, unused
            self._deps_filled(self._build_log.text())
        self.stop()
        if self.engine.name == "docker":
            run_quiet([self.engine.path, "rm", "-f", self.name])
            run_quiet([self.engine.path, "rmi", "-f", self.tag])
            # BuildKit keeps cache mounts (`--mount=type=cache`) for every later build: no
            # student's cache reaches another's (a build running meanwhile may lose its own)
            prune = ["builder", "prune", "-f", "--filter", "type=exec.cachemount"]
            run_quiet([self.engine.path, *prune], timeout=300)
        if self.folder is not None:
            if self.engine.name == "podman" and os.geteuid() != 0:
                self._engine_cmd(["system", "reset", "--force"])  # files of sub-uids
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder.with_suffix(".lock").unlink(missing_ok=True)
        self.folder = None
        if self._store is not None:
            self._store.release()
            self._store = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
