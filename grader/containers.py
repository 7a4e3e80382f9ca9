"""Stage 6's container engine: detection, build, run, readiness and cleanup.

A student's Dockerfile is untrusted code that the engine runs with the engine's rights, so the
grader builds and runs it as an identity that can read nothing of the grader's:

- **Rootless podman under a dedicated user** (`grader-build`, or `$GRADER_BUILD_USER`) when
  the grader runs as root: the build and the container run in that user's namespaces, with
  files that user can read only (its home is 0700; the grader's, the instructor's and the other
  students' files are not readable to it).
- **A storage of its own per run**: `podman --root/--runroot` in a fresh folder, deleted
  afterwards, with the base images read from the build user's storage as a read-only image
  store. No `--mount=type=cache` (kept under the run's own `TMPDIR`) is shared between
  students, and one kind of layer only: the **dependency steps** (`dockerfile.dependency_steps`:
  the first steps, up to the RUN that installs from uv.lock, when they read nothing of the
  folder but pyproject.toml, uv.lock and .python-version). They are built once into a store
  keyed by their exact text, those files' bytes, `.dockerignore`, the engine and the base
  images, and later builds with the same key read that store read-only. A build of other steps
  or other bytes never sees another student's layer.
- **One process tree per run, in a pid namespace of its own** (`unshare --pid --kill-child`,
  killed with the grader through PDEATHSIG): build, `RUN` steps, conmon and the container die
  together, whenever the grader stops, is stopped (`grade batch --timeout`) or is killed.
  A later run sweeps the folders of runs whose grader is gone.
- **Limits**: ulimits on processes, memory (data) and file size for build and container; a
  wall-clock limit on the build and on start-up; the build log and the server log are kept as
  bounded tails while they are read; no proxy variables (`--http-proxy=false`) and an empty
  environment; rootless networking (slirp4netns) cannot reach the host's loopback.

The static Dockerfile policy (`grader.dockerfile.policy_problems`) refuses what the course
does not teach (cache ids, `from=` bind mounts, sources outside the context, `ADD` of URLs)
before anything is built. Docker (a daemon) is used when it answers; it is not isolated this
way, and `Engine.warnings` says so.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import hashlib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from grader import dockerfile, dockerpolicy, files

BUILD_USER = os.environ.get("GRADER_BUILD_USER", "grader-build")
# short: podman refuses a runroot path over 50 characters
RUNS = Path(os.environ.get("GRADER_CONTAINER_RUNS", "/var/tmp/grader-ctr"))
LOG_KEPT = 200_000  # bytes of the build log and of the server log kept (the tails)
BUILD_SECONDS = 1200.0
# ulimits of builds and containers (rootless podman on cgroup v1 ignores --memory/--pids-limit)
NPROC = 4096  # counts every process of the build user: all its runs share it
DATA_BYTES = 4 * 1024**3
NETWORK = "slirp4netns:allow_host_loopback=false"  # rootless podman: no way to the host's 127.0.0.1
HELPERS = RUNS / "bin"  # first on the engine's PATH (see `helpers`)
SLIRP = """#!/bin/sh
# buildah before 1.29 starts slirp4netns for RUN steps without this flag: the build could reach
# the host's loopback services through 10.0.2.2. The flag is harmless when given twice.
exec /usr/bin/slirp4netns --disable-host-loopback "$@"
"""
FILE_BYTES = 2 * 1024**3

# Engine releases that fix the buildah CVEs the grader's policy also blocks (see
# docs/reliability.md): (name, fixed in, what it allows).
PODMAN_FIXES = (
    ("CVE-2024-1753", (4, 9, 4), "a `from=` bind mount of a symlink mounts the host's /"),
    ("CVE-2024-9675", (5, 3, 0), "a cache mount `id=../..` mounts any host folder"),
)
DOCKER_FIXED = (25, 0, 2)  # BuildKit 0.12.5: CVE-2024-23651/23652/23653 (cache and mounts)


def _version(text: str) -> tuple[int, ...]:
    found = re.match(r"\s*v?(\d+)\.(\d+)(?:\.(\d+))?", text)
    return tuple(int(g or 0) for g in found.groups()) if found else ()


@dataclass(frozen=True)
class Engine:
    """A usable container engine and who runs it."""

    name: str  # "podman" or "docker"
    path: str
    version: str
    user: str | None = None  # the unprivileged user podman runs as (grader as root)
    uid: int | None = None
    home: Path | None = None
    warnings: tuple[str, ...] = ()
    driver: str = ""  # podman's storage driver and image store (the base images)
    store: str = ""

    @property
    def rootless(self) -> bool:
        return self.name == "podman" and (self.user is not None or os.geteuid() != 0)

    def describe(self) -> str:
        """What applies to stage 6, in words, for the report."""
        if self.name == "docker":
            return (
                f"docker {self.version} (a daemon: builds run with its rights, no per-student "
                "storage; --no-cache per build)"
            )
        who = (
            f"rootless as the unprivileged user {self.user}"
            if self.user
            else "rootless as the grader's own user"
        )
        return (
            f"podman {self.version} {who}, a storage of its own per submission (shared: only "
            "the uv.lock install steps, between byte-identical ones), own pid namespace, "
            f"ulimits (processes {NPROC}, data {DATA_BYTES // 2**30} GiB, file size "
            f"{FILE_BYTES // 2**30} GiB), no proxy, no host loopback"
        )

    def env(self, tmpdir: Path) -> dict[str, str]:
        """The whole environment of an engine command: nothing of the grader's."""
        path = f"{HELPERS}:/usr/local/bin:/usr/bin:/bin"
        env = {"PATH": path, "LANG": "C.UTF-8", "TMPDIR": str(tmpdir)}
        home = self.home or Path(os.environ.get("HOME", "/"))
        env["HOME"] = str(home)
        env["XDG_RUNTIME_DIR"] = str(tmpdir / "xdg")
        return env

    def wrap(self, argv: list[str]) -> list[str]:
        """`argv` as the build user (runuser), when there is one, in a pid namespace of its
        own: rootless podman's pause process and conmon die with it."""
        if self.user is None:
            return argv
        runuser = shutil.which("runuser", path="/usr/sbin:/sbin:/usr/bin:/bin") or "runuser"
        unshare = shutil.which("unshare", path="/usr/bin:/bin:/usr/sbin") or "unshare"
        return [unshare, "--pid", "--fork", "--kill-child", "--mount-proc",
                runuser, "-u", self.user, "--", *argv]  # fmt: skip


def _run(
    argv: list[str], timeout: float = 60, **kwargs: object
) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(  # type: ignore[call-overload, no-any-return]
            argv, capture_output=True, text=True, timeout=timeout, check=False, **kwargs
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return subprocess.CompletedProcess(argv, 1, "", str(e))


def _warnings(name: str, version: str) -> tuple[str, ...]:
    found = _version(version)
    if not found:
        return (f"{name} {version}: version unknown, cannot tell which engine CVEs it fixes",)
    if name == "docker":
        if found < DOCKER_FIXED:
            return (
                f"docker {version} is older than 25.0.2 (BuildKit 0.12.5), which fixes "
                "CVE-2024-23651/23652/23653 (cache and RUN --mount escapes): upgrade",
            )
        return ()
    old = [f"{cve} ({what}; fixed in podman {'.'.join(map(str, fix))})"
           for cve, fix, what in PODMAN_FIXES if found < fix]  # fmt: skip
    if not old:
        return ()
    return (
        f"podman {version} predates the fixes of " + "; ".join(old) + ". The grader refuses "
        "the Dockerfile features these use and builds as an unprivileged user with a storage "
        "of its own; upgrade podman where your distribution offers it",
    )


def detect(wanted: str = "auto") -> tuple[Engine | None, str]:
    """The engine to build with, or None and why not (stage 6's build checks then skip)."""
    if wanted == "none":
        return None, "container checks turned off (--engine none)"
    reasons = []
    for name in ["docker", "podman"] if wanted == "auto" else [wanted]:
        path = shutil.which(name)
        if path is None:
            reasons.append(f"no {name}")
            continue
        if name == "docker":
            info = _run([path, "version", "--format", "{{.Server.Version}}"])
            if info.returncode != 0 or not info.stdout.strip():
                reasons.append("docker has no daemon")
                continue
            version = info.stdout.strip()
            return Engine(name, path, version, warnings=_warnings(name, version)), ""
        engine, why = _podman(path)
        if engine is not None:
            return engine, ""
        reasons.append(why)
    return None, "; ".join(reasons)


def _podman(path: str) -> tuple[Engine | None, str]:
    version = _run([path, "version", "--format", "{{.Client.Version}}"]).stdout.strip()
    fmt = ["info", "--format", "{{.Store.GraphDriverName}} {{.Store.GraphRoot}}"]
    if os.geteuid() != 0:
        info = _run([path, *fmt])
        if info.returncode != 0:
            return None, "podman does not answer `podman info`"
        driver, _, store = info.stdout.strip().partition(" ")
        return Engine("podman", path, version, warnings=_warnings("podman", version),
                      driver=driver, store=store), ""  # fmt: skip
    try:
        user = pwd.getpwnam(BUILD_USER)
    except KeyError:
        return None, (
            f"the grader runs as root and builds untrusted Dockerfiles only as an unprivileged "
            f"user: create it with `useradd -m {BUILD_USER}` (it needs subuid/subgid ranges, "
            "which useradd gives)"
        )
    tun = Path("/dev/net/tun")
    if tun.exists() and tun.stat().st_mode & 0o006 != 0o006:
        return None, (
            f"rootless podman needs /dev/net/tun open to all users (its usual mode 0666; "
            f"here {oct(tun.stat().st_mode & 0o777)}): chmod 0666 /dev/net/tun"
        )
    home = Path(user.pw_dir)
    engine = Engine("podman", path, version, BUILD_USER, user.pw_uid, home,
                    _warnings("podman", version))  # fmt: skip
    with contextlib.suppress(OSError):
        home.chmod(0o700)  # nothing of its storage for other users
    probe_dir = Path(tempfile.mkdtemp(prefix="grader-podman-"))
    try:
        os.chown(probe_dir, user.pw_uid, user.pw_gid)
        info = _run(engine.wrap([path, *fmt]), env=engine.env(probe_dir), cwd="/")
    finally:
        shutil.rmtree(probe_dir, ignore_errors=True)
    if info.returncode != 0:
        return None, f"rootless podman as {BUILD_USER} does not work: {info.stderr[-300:]}"
    driver, _, store = info.stdout.strip().partition(" ")
    return dataclasses.replace(engine, driver=driver, store=store), ""


# -- base images -----------------------------------------------------------------------------
def ensure_images(engine: Engine, images: Iterable[str]) -> None:
    """Copy base images the build user lacks from the root engine's storage (`podman save |
    podman load` as that user): the grader's trusted images, once per machine."""
    if engine.user is None:
        return
    for image in images:
        tmp = Path(tempfile.mkdtemp(prefix="grader-load-"))
        try:
            os.chown(tmp, engine.uid or 0, -1)
            env = engine.env(tmp)
            mine = _run(engine.wrap([engine.path, "image", "exists", image]), env=env, cwd="/")
            if mine.returncode == 0:
                continue
            if _run([engine.path, "image", "exists", image]).returncode != 0:
                continue  # the build will try to pull it
            save = subprocess.Popen([engine.path, "save", image], stdout=subprocess.PIPE,
                                    stderr=subprocess.DEVNULL)  # fmt: skip
            load = subprocess.run(engine.wrap([engine.path, "load"]), stdin=save.stdout,
                                  capture_output=True, env=env, cwd="/", timeout=600,
                                  check=False)  # fmt: skip
            save.wait()
            del load
        except (OSError, subprocess.TimeoutExpired):
            pass
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


# -- output -----------------------------------------------------------------------------------
class Tail:
    """Drains a pipe in a thread, keeping its last `keep` bytes only."""

    def __init__(self, stream: IO[bytes], keep: int = LOG_KEPT) -> None:
        self.stream = stream
        self.keep = keep
        self.buffer = bytearray()
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._drain, daemon=True)
        self.thread.start()

    def _drain(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            while chunk := self.stream.read1(1 << 16):  # type: ignore[attr-defined]
                with self.lock:
                    self.buffer += chunk
                    if len(self.buffer) > 2 * self.keep:
                        del self.buffer[: -self.keep]

    def text(self) -> str:
        with self.lock:
            return bytes(self.buffer[-self.keep :]).decode(errors="replace")


# -- one run: build, then serve ---------------------------------------------------------------
def _die_with_grader() -> None:
    """In the child before exec: SIGKILL when the grader dies (Linux)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Build:
    """How the build ended: exit code (None: did not finish in time) and its log's tail."""

    returncode: int | None
    log: str
    seconds: float = 0.0


@dataclass
class Run:
    """One submission's image: built from `source` (copied), then run, in a folder of its own."""

    engine: Engine
    run_id: str
    source: Path
    port: int  # the port the container serves on
    images: list[str] = field(default_factory=list)  # base images to make available
    ignore: tuple[str, ...] = ()
    host_port: int = 0
    started_at: float = 0.0
    _proc: subprocess.Popen[bytes] | None = None
    _build_log: Tail | None = None
    _server_log: Tail | None = None
    _server_r: int | None = None
    _lock_fd: int | None = None
    folder: Path | None = None
    deps: Path | None = None  # the dependency store this build reads (or fills)
    _key: str = ""  # the store's key, from the files read before training
    refused: str = ""  # why the Dockerfile found after training was not built
    _deps_fd: int | None = None
    _deps_builder: bool = False  # this run fills `deps` (then marks it done)

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

    def _storage(self, root: Path | None = None, deps: bool = False) -> list[str]:
        """podman's storage options: the run's own (or `root`), the base images and, with
        `deps`, the dependency store as read-only image stores."""
        root = root or self.folder
        if self.engine.name != "podman" or root is None:
            return []
        args = ["--root", str(root / "storage"), "--runroot", str(root / "r")]
        driver, stores = self.engine.driver, [self.engine.store]
        if deps and self.deps is not None:
            stores.append(str(self.deps / "storage"))
        if driver:
            args += ["--storage-driver", driver]
            if any(stores):  # the base images (and the dependency steps), read-only
                args += ["--storage-opt", f"{driver}.imagestore={','.join(filter(None, stores))}"]
        return args

    def begin(self) -> None:
        """What needs no trained model, started before training: the run's folder and, with
        podman, the build of the dependency steps when no build has filled their store yet
        (from the project files only, read before any student code runs). The script then
        waits for `start`'s word."""
        sweep()
        RUNS.mkdir(parents=True, exist_ok=True)
        RUNS.chmod(0o711)
        helpers()
        self.folder = Path(tempfile.mkdtemp(prefix=f"run-{os.getpid()}-", dir=RUNS))
        self._lock_fd = _lock(self.folder)
        (self.folder / "xdg").mkdir(mode=0o700)
        (self.folder / "deps-context").mkdir()
        self._key = self._dependency_store()
        if self.engine.user is not None:
            for name in ("xdg", "deps-context", "deps.Dockerfile"):
                self._give(self.folder / name)
            os.chown(self.folder, self.engine.uid or 0, self.engine.uid or 0)
            if self.deps is not None and self._deps_builder:
                os.chown(self.deps, self.engine.uid or 0, self.engine.uid or 0)
        self.folder.chmod(0o700)
        ensure_images(self.engine, self.images)
        self.host_port = free_port()
        e = self.engine
        context = str(self.folder / "context")
        common = ["--http-proxy=false", f"--ulimit=nproc={NPROC}:{NPROC}",
                  f"--ulimit=data={DATA_BYTES}:{DATA_BYTES}",
                  f"--ulimit=fsize={FILE_BYTES}:{FILE_BYTES}"]  # fmt: skip
        label = [f"--label=grader.run={self.run_id}"]
        deps = ["true"]
        if self.deps is not None and self._deps_builder:
            deps = [e.path, *self._storage(self.deps), "build", "--layers", *common,
                    "-f", str(self.folder / "deps.Dockerfile"), "-t",
                    f"localhost/grader-{self.deps.name}",
                    str(self.folder / "deps-context")]  # fmt: skip
        # "shared": the dependency steps come from their read-only store (--layers finds them
        # there, and nothing else: the run's own storage starts empty); "fresh": no cache.
        fresh_cache = ["--no-cache"] + (["--layers=false"] * (e.name == "podman"))
        shared = [e.path, *self._storage(deps=True), "build", "--layers", *common, *label,
                  "-t", self.tag, context]  # fmt: skip
        fresh = [e.path, *self._storage(), "build", *fresh_cache, *common, *label,
                 "-t", self.tag, context]  # fmt: skip
        network = [f"--network={NETWORK}"] if e.name == "podman" else []
        run = [e.path, *self._storage(deps=True), "run", "--rm", "--name", self.name, *common,
               *label, *network, "-p", f"127.0.0.1:{self.host_port}:{self.port}",
               self.tag]  # fmt: skip
        read_end, write_end = os.pipe()
        self._server_r = read_end
        inspect = [e.path, *self._storage(deps=True), "image", "inspect", "--format",
                   "{{.Size}}", self.tag]  # fmt: skip
        parts = [deps, shared, fresh, inspect]
        argv = ["bash", "-c", _SCRIPT, "bash", self.marker, self.deps_marker, str(write_end),
                *(str(len(part)) for part in parts), *(w for part in parts for w in part),
                *run]  # fmt: skip
        self.started_at = time.monotonic()
        self._proc = subprocess.Popen(
            e.wrap(argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, pass_fds=(write_end,), env=e.env(self.folder),
            cwd=str(self.folder), start_new_session=True, preexec_fn=_die_with_grader,
        )  # fmt: skip
        os.close(write_end)
        assert self._proc.stdout is not None
        self._build_log = Tail(self._proc.stdout)
        self._server_log = Tail(os.fdopen(read_end, "rb"))

    def start(self) -> None:
        """Copy the (trained) context, then let the script build the image and run it. The
        dependency store is used only if the steps and the files they read are still the
        ones it was keyed with (training may have changed them)."""
        if self._proc is None:
            self.begin()
        assert self.folder is not None and self._proc is not None and self._proc.stdin
        context = self.folder / "context"
        shutil.copytree(self.source, context, symlinks=True,
                        ignore=shutil.ignore_patterns(*self.ignore))  # fmt: skip
        if self.engine.user is not None:
            self._give(context)
        mode = "fresh"
        text = _dockerfile(context)  # what is built: checked again (training ran meanwhile)
        problems = dockerpolicy.policy_problems(dockerfile.parse(text or ""))
        if text is None or problems:
            mode = "refused"
            self.refused = "the grader does not build this Dockerfile:\n- " + "\n- ".join(
                problems or ["the Dockerfile is missing or unreadable after training"]
            )
        elif self.deps is not None:
            steps = dockerpolicy.dependency_steps(text)
            if steps is not None and _deps_key(context, steps, self.engine) == self._key:
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

    def _dependency_store(self) -> str:
        """Find (or claim, to fill it) the store of the source's dependency steps and set
        `deps`; the store's key ("" and no store when the steps cannot be shared or the store
        is busy). Reads the source's project files only, through the bounded readers."""
        if self.engine.name != "podman" or self.folder is None:
            return ""
        text = _dockerfile(self.source)
        steps = dockerpolicy.dependency_steps(text) if text is not None else None
        own = self.folder / "deps-context"
        try:  # the files the steps read, copied as read (what is hashed is what is built)
            for name in (*(steps.files if steps else ()), ".dockerignore"):
                path = files.submitted(self.source, name)
                if path is not None:
                    (own / name).write_bytes(files.read_bytes(path, root=self.source))
                    (own / name).chmod(path.lstat().st_mode & 0o777)  # COPY keeps the mode
        except (OSError, files.FileProblem):
            return ""
        key = _deps_key(own, steps, self.engine) if steps is not None else None
        if steps is None or key is None:
            return ""
        store = RUNS / f"deps-{key[:20]}"
        done = store.with_suffix(".done")
        if done.exists():
            fd = _flock(store, shared=True)
            if fd is not None and done.exists():
                self.deps, self._deps_fd = store, fd
                with contextlib.suppress(OSError):
                    os.utime(store.with_suffix(".lock"))
                return key
            if fd is not None:
                os.close(fd)
            return ""
        fd = _flock(store, shared=False)
        if fd is None:  # another run fills it right now: build without it
            return ""
        if done.exists():  # filled meanwhile: read it
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_SH)
            self.deps, self._deps_fd = store, fd
            return key
        _remove(store)  # a fill that did not finish
        if store.exists():  # could not be deleted: build without a store
            os.close(fd)
            return ""
        store.mkdir(mode=0o700)
        (self.folder / "deps.Dockerfile").write_text(steps.text)
        self.deps, self._deps_fd, self._deps_builder = store, fd, True
        return key

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
                return Build(int(code) if code.lstrip("-").isdigit() else 1, before,
                             time.monotonic() - self.started_at)  # fmt: skip
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
        if self._deps_builder and self.deps is not None and f"{self.deps_marker} 0\n" in log:
            self.deps.with_suffix(".done").touch()
            self._deps_builder = False

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
            _run(self.engine.wrap([self.engine.path, *self._storage(), *args]),
                 env=self.engine.env(self.folder), cwd="/")  # fmt: skip

    def close(self) -> None:
        """Stop everything and delete the run's folder (storage, context, caches)."""
        if self._build_log is not None:  # the dependency steps may have been built, unused
            self._deps_filled(self._build_log.text())
        self.stop()
        if self.engine.name == "docker":
            _run([self.engine.path, "rm", "-f", self.name])
            _run([self.engine.path, "rmi", "-f", self.tag])
        if self.folder is not None:
            if self.engine.name == "podman" and os.geteuid() != 0:
                self._engine_cmd(["system", "reset", "--force"])  # files of sub-uids
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder.with_suffix(".lock").unlink(missing_ok=True)
        if self.deps is not None and self._deps_builder:  # filled only in part: not kept
            _remove(self.deps)
        self.folder = None
        for fd in (self._lock_fd, self._deps_fd):
            if fd is not None:
                os.close(fd)
        self._lock_fd = self._deps_fd = None
        self.deps = None


# Build the dependency steps (when this run fills their store); wait for the grader's word
# ("shared" or "fresh": which build to run; anything else, or none, ends the script); build;
# print the marker with the build's exit code, then (if it passed) exec the container with its
# output on the descriptor given: the build log and the server log are read separately.
_SCRIPT = r"""
mark=$1; deps_mark=$2; fd=$3; nd=$4; ns=$5; nf=$6; ni=$7; shift 7
deps=("${@:1:$nd}"); shift "$nd"
shared=("${@:1:$ns}"); shift "$ns"
fresh=("${@:1:$nf}"); shift "$nf"
inspect=("${@:1:$ni}"); shift "$ni"
"${deps[@]}" </dev/null 2>&1
rc=$?
[ "$nd" -gt 1 ] && echo && echo "$deps_mark $rc"
read -r mode || exit 0
if [ "$mode" = shared ]; then
  [ "$rc" -eq 0 ] && "${shared[@]}" </dev/null 2>&1
  rc=$?
elif [ "$mode" = fresh ]; then
  "${fresh[@]}" </dev/null 2>&1
  rc=$?
else
  exit 0
fi
echo
[ "$rc" -eq 0 ] && echo "GRADER-IMAGE-SIZE $("${inspect[@]}" </dev/null 2>/dev/null)"
echo "$mark $rc"
[ "$rc" -eq 0 ] || exit "$rc"
exec "$@" </dev/null 1>&"$fd" 2>&"$fd"
"""


def helpers() -> None:
    """The engine's helper wrappers (root-owned, read-only to others), written if missing."""
    HELPERS.mkdir(parents=True, exist_ok=True)
    HELPERS.chmod(0o755)
    slirp = HELPERS / "slirp4netns"
    if Path("/usr/bin/slirp4netns").exists() and (not slirp.exists() or slirp.read_text() != SLIRP):
        tmp = slirp.with_suffix(".tmp")
        tmp.write_text(SLIRP)
        tmp.chmod(0o755)
        tmp.replace(slirp)


DEPS_KEEP = 6  # dependency stores kept (the most recently used), each ~300 MB for the course


def _deps_key(context: Path, steps: dockerpolicy.DependencySteps, engine: Engine) -> str | None:
    """sha256 of everything the dependency steps' result depends on: their text, the bytes and
    modes of the files they read, `.dockerignore`, the engine and the base images it holds.
    None if one of those files is not a plain file (the build then shares nothing)."""
    digest = hashlib.sha256(f"grader-deps-1\0{engine.version}\0{engine.driver}\0".encode())
    digest.update(steps.text.encode() + b"\0")
    images = Path(engine.store) / f"{engine.driver}-images" / "images.json"
    with contextlib.suppress(OSError):
        digest.update(hashlib.sha256(images.read_bytes()).digest())
    for name in (*steps.files, ".dockerignore"):
        path = context / name
        if name == ".dockerignore" and not os.path.lexists(path):
            digest.update(b"no .dockerignore\0")
            continue
        if path.is_symlink() or not path.is_file() or path.stat().st_size > files.limit_for(name):
            return None
        digest.update(f"{name}\0{path.stat().st_mode:o}\0".encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _dockerfile(context: Path) -> str | None:
    """`context`'s Dockerfile, read through the bounded readers (None: none, or unreadable)."""
    try:
        path = files.submitted(context, "Dockerfile")
        if path is None:
            return None
        return files.read_bytes(path, root=context).decode(errors="replace")
    except (OSError, files.FileProblem):
        return None


def _flock(folder: Path, shared: bool) -> int | None:
    """The folder's lock (shared or exclusive) if free, on the lock file still in place (not
    one a sweep has just unlinked); None if another process holds it."""
    import fcntl

    try:
        fd = os.open(folder.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        return None
    try:
        fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        if os.fstat(fd).st_ino == os.stat(folder.with_suffix(".lock")).st_ino:
            return fd
    except OSError:
        pass
    os.close(fd)
    return None


def _lock(folder: Path) -> int:
    fd = _flock(folder, shared=False)
    if fd is None:
        raise OSError(f"{folder} is in use")
    return fd


def _remove(folder: Path) -> None:
    """Delete a run's or a store's folder and its marks (the lock file stays with its holder).
    A grader that is not root cannot delete the files of its sub-uids itself: podman can."""
    shutil.rmtree(folder, ignore_errors=True)
    podman = shutil.which("podman")
    if folder.exists() and os.geteuid() != 0 and podman is not None:
        _run([podman, "unshare", "rm", "-rf", str(folder)], timeout=300)
    folder.with_suffix(".done").unlink(missing_ok=True)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def sweep() -> None:
    """Delete the folders of runs whose grader is gone (its lock is free), dependency stores
    left half-filled, and all but the `DEPS_KEEP` most recently used ones."""
    if not RUNS.is_dir():
        return
    for staged in RUNS.glob("context-*"):  # left by graders before this layout
        with contextlib.suppress(OSError):
            if time.time() - staged.stat().st_mtime > 3600:
                shutil.rmtree(staged, ignore_errors=True)
    stores = sorted(RUNS.glob("deps-*.lock"), key=_mtime, reverse=True)
    done = [lock for lock in stores if lock.with_suffix(".done").exists()]
    stale = [lock for lock in stores if lock not in done[:DEPS_KEEP]]
    for lock in [*RUNS.glob("run-*.lock"), *RUNS.glob("keep-*.lock"), *stale]:
        fd = _flock(lock.with_suffix(""), shared=False)
        if fd is None:  # in use, or swept by another grader meanwhile
            continue
        try:
            _remove(lock.with_suffix(""))
            lock.unlink(missing_ok=True)
        finally:
            os.close(fd)
