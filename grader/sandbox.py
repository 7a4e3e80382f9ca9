"""Run untrusted student code in a child process with limits and, where possible, isolation.

On Linux with bubblewrap (`bwrap`) the child sees only what a run needs, read-only (the system
folders, a few files of /etc, the interpreter and its environment, the grader's probes, uv, the
dataset: never the host's `/`, `$HOME`, other submissions or the course repository), a
private size-capped `/tmp`, the scratch copy of the submission as its only writable place, a
network namespace of its own (loopback only) and a pid namespace of its own. When the grader
runs as root, the child also drops to an unprivileged uid of its own sandbox (`SandboxUid`), so
that the process-count limit applies and counts that sandbox's processes only. Everywhere, the
child gets rlimits (CPU, memory, processes, file size), a wall-clock timeout and a scrubbed
environment. Where bubblewrap is missing the grader still runs, with rlimits and timeouts only, and
`Sandbox.isolation` says so (it is printed with every report).

The scratch copy lives on the host's disk, and no size-capped mount is possible there without
privileges, so a watchdog thread (`Sandbox._watch`, in every mode, root or not, with or without
bubblewrap) walks it every 0.1 s while a command runs and kills every running command when what
they added passes `WRITE_BYTES` or `WRITE_ENTRIES` (without bubblewrap, their `TMPDIR` too); the
run's result then says why (`RunResult.stopped`). The overshoot is what is written in one
interval. Files deleted while still open are counted every ~1 s (Linux /proc). Under bubblewrap
a seccomp filter refuses fallocate(), which reserves disk past RLIMIT_FSIZE in one call.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import platform
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

try:
    import resource
except ImportError:  # Windows: no rlimits
    resource = None  # type: ignore[assignment]
try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

# Where the scratch copy appears inside the bubblewrap sandbox.
INSIDE = Path("/tmp/submission")
# Sandboxes run as root get uids UID_BASE..UID_BASE+UID_SLOTS-1, one per live sandbox: no user
# has them (far above the subordinate-uid ranges of rootless containers, 100000-165535 and up).
UID_BASE = 1_500_000_000
UID_SLOTS = 10_000
UID_LOCKS = Path(tempfile.gettempdir()) / "grader-uids"
IGNORED = (".venv", "venv", "__pycache__", ".git", ".pytest_cache", ".mypy_cache", ".ruff_cache")
MAX_SUBMISSION_BYTES = 200 * 1024 * 1024
RESULT_MARK = "GRADER-RESULT"
OUTPUT_KEPT = 200_000  # bytes of each stream kept (the tail); the rest is read and dropped
RESULT_BYTES = 64 * 1024**2  # at most this much of a probe's result is read
TMP_BYTES = 512 * 1024**2  # the private /tmp (tmpfs: memory)
SHM_BYTES = 256 * 1024**2  # the private /dev/shm
WRITE_BYTES = 512 * 1024**2  # what commands may add to the scratch copy, all together (disk)
WRITE_ENTRIES = 10_000  # files and folders they may add to it
WATCH_SECONDS = 0.1  # how often the scratch copy is measured while a command runs (at most)
# What the sandbox shows of the host besides `Sandbox.needed()`: the system, read-only.
SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
ETC = ("passwd", "group", "nsswitch.conf", "hosts", "host.conf", "resolv.conf", "localtime",
       "timezone", "ssl", "ca-certificates", "ld.so.cache", "ld.so.conf", "ld.so.conf.d",
       "alternatives", "mime.types", "os-release", "debian_version", "protocols", "services",
       "locale.alias", "gai.conf")  # fmt: skip


@dataclass(frozen=True)
class Limits:
    """Resource limits of one sandboxed command."""

    wall_seconds: float = 300.0
    cpu_seconds: int = 600
    memory_bytes: int = 4 * 1024**3
    processes: int = 128
    file_bytes: int = 256 * 1024**2


@dataclass
class RunResult:
    """What a sandboxed command did: exit code, output, whether it ran out of time."""

    command: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    timed_out: bool = False
    result_text: str | None = None  # what it wrote to its result descriptor (`result_fd=True`)
    stopped: str | None = None  # why the sandbox killed it (its folder grew past the caps)

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out and self.stopped is None

    def tail(self, lines: int = 15) -> str:
        """The last lines of stderr and stdout, for the student's feedback."""
        text = "\n".join(part for part in (self.stdout.strip(), self.stderr.strip()) if part)
        kept = [line for line in text.splitlines() if not line.startswith(RESULT_MARK)]
        return "\n".join(kept[-lines:])

    def describe(self) -> str:
        """One line: how the command ended."""
        if self.stopped:
            return f"`{' '.join(self.command)}` was stopped: {self.stopped}"
        if self.timed_out:
            return f"`{' '.join(self.command)}` did not finish within {self.seconds:.0f} s"
        if self.returncode < 0:
            name = signal.Signals(-self.returncode).name
            return f"`{' '.join(self.command)}` was killed by {name} (a resource limit?)"
        return f"`{' '.join(self.command)}` exited with code {self.returncode}"

    def result(self, nonce: str) -> dict[str, Any] | None:
        """The JSON a probe wrote as `GRADER-RESULT <nonce> {json}` to its result descriptor
        (started with `result_fd=True`), or else printed on such a stdout line, if any."""
        prefix = f"{RESULT_MARK} {nonce} "
        lines = (
            self.result_text.splitlines()
            if self.result_text is not None
            else reversed(self.stdout.splitlines())
        )
        for line in lines:
            if line.startswith(prefix):
                try:
                    value = json.loads(line[len(prefix) :])
                except ValueError:
                    return None
                return value if isinstance(value, dict) else None
        return None


def _bwrap() -> str | None:
    if platform.system() != "Linux" or os.environ.get("GRADER_NO_BWRAP"):
        return None
    path = shutil.which("bwrap")
    if path is None:
        return None
    probe = subprocess.run(
        [path, "--ro-bind", "/", "/", "--unshare-net", "--unshare-pid", "true"],
        capture_output=True,
        timeout=30,
        check=False,
    )
    return path if probe.returncode == 0 else None


class SandboxUid:
    """An unprivileged uid held by one sandbox for its life (a lock file per uid, flock'ed).

    RLIMIT_NPROC counts every process of a uid on the machine: with one uid for all sandboxes
    (nobody), one student's fork bomb at its limit left a student graded at the same time
    (`grade batch --jobs N`) no process to start. A uid of its own per sandbox keeps each
    bomb to itself. The lock goes with the grader process, however it ends."""

    def __init__(self) -> None:
        assert fcntl is not None
        UID_LOCKS.mkdir(mode=0o700, exist_ok=True)
        start = os.getpid() % UID_SLOTS
        for i in range(UID_SLOTS):
            uid = UID_BASE + (start + i) % UID_SLOTS
            fd = os.open(UID_LOCKS / str(uid), os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                continue
            self.uid = uid
            self._fd: int | None = fd
            return
        raise RuntimeError(f"all {UID_SLOTS} sandbox uids are in use ({UID_LOCKS})")

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None


def real_uv() -> str | None:
    """The uv binary itself (not a pyenv/asdf shim, which needs the caller's home)."""
    path = shutil.which("uv")
    if path is None:
        return None
    if "/shims/" in path:
        pyenv = shutil.which("pyenv")
        if pyenv:
            out = subprocess.run(
                [pyenv, "which", "uv"], capture_output=True, text=True, check=False
            )
            if out.returncode == 0 and out.stdout.strip():
                return out.stdout.strip()
    return str(Path(path).resolve())


def _no_fallocate() -> bytes | None:
    """A seccomp filter (classic BPF) answering fallocate() with EOPNOTSUPP, for bubblewrap's
    `--seccomp`: with FALLOC_FL_KEEP_SIZE one call reserves disk past RLIMIT_FSIZE (2 GiB
    measured here), before any watchdog can look. glibc's posix_fallocate then writes zeros
    instead, within the limit. None on machines it does not know (no filter)."""
    known: dict[str, dict[int, tuple[int, ...]]] = {  # audit arch -> fallocate's numbers
        "x86_64": {0xC000003E: (285, 0x40000000 | 285), 0x40000003: (324,)},
        "aarch64": {0xC00000B7: (47,), 0x40000028: (352,)},
    }  # x86_64 also answers the x32 and i386 calls, aarch64 the 32-bit arm one
    arches = known.get(platform.machine())
    if arches is None:
        return None
    load, jeq, ret = 0x20, 0x15, 0x06  # BPF_LD|W|ABS, BPF_JMP|JEQ|K, BPF_RET|K
    code: list[tuple[int, int, int, int]] = []
    denials: list[int] = []  # instructions whose "true" jump goes to the denial
    for arch, numbers in arches.items():
        code.append((load, 0, 0, 4))  # seccomp_data.arch
        code.append((jeq, 0, 1 + len(numbers), arch))  # not this arch: next block
        code.append((load, 0, 0, 0))  # seccomp_data.nr
        for number in numbers:
            denials.append(len(code))
            code.append((jeq, 0, 0, number))
    code.append((ret, 0, 0, 0x7FFF0000))  # SECCOMP_RET_ALLOW
    deny = len(code)
    code.append((ret, 0, 0, 0x00050000 | errno.EOPNOTSUPP))  # SECCOMP_RET_ERRNO
    for i in denials:
        op, _, jf, k = code[i]
        code[i] = (op, deny - i - 1, jf, k)
    return b"".join(struct.pack("=HBBI", *instruction) for instruction in code)


def disk_usage(roots: Sequence[Path], most: int) -> tuple[int, int]:
    """(bytes, entries) under `roots`, symlinks not followed; a file counts its size or its
    allocated blocks, whichever is larger. The walk stops past `most` entries (its cost stays
    bounded), and a folder it cannot list is made listable (as root nothing is refused; as
    another uid the folders are the grader's own) or else counted as `most + 1` entries."""
    size = entries = 0
    stack = [str(root) for root in roots if root.is_dir()]
    while stack and entries <= most:
        folder = stack.pop()
        try:
            listing = list(os.scandir(folder))
        except PermissionError:
            try:
                os.chmod(folder, 0o700)
                listing = list(os.scandir(folder))
            except OSError:
                return size, most + 1
        except OSError:  # removed meanwhile
            continue
        for entry in listing:
            entries += 1
            with contextlib.suppress(OSError):
                info = entry.stat(follow_symlinks=False)
                size += max(info.st_size, getattr(info, "st_blocks", 0) * 512)
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
    return size, entries


def held_deleted(pids: Sequence[int], device: int) -> int:
    """Bytes of files on `device` deleted but still open in `pids` or their descendants (Linux
    /proc; 0 elsewhere): a file unlinked while open keeps its disk until it is closed."""
    children: dict[int, list[int]] = {}
    with contextlib.suppress(OSError):
        for name in os.listdir("/proc"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                if name.isdigit():
                    with open(f"/proc/{name}/stat", "rb") as stat:
                        parent = int(stat.read().rsplit(b")", 1)[1].split()[1])
                    children.setdefault(parent, []).append(int(name))
    seen: set[tuple[int, int]] = set()
    size = 0
    stack = list(pids)
    visited: set[int] = set()
    while stack:
        pid = stack.pop()
        if pid in visited:
            continue
        visited.add(pid)
        stack += children.get(pid, [])
        proc = f"/proc/{pid}"
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"{proc}/fd"):
                with contextlib.suppress(OSError):
                    if not os.readlink(f"{proc}/fd/{fd}").endswith(" (deleted)"):
                        continue
                    info = os.stat(f"{proc}/fd/{fd}")
                    if info.st_dev == device and (info.st_dev, info.st_ino) not in seen:
                        seen.add((info.st_dev, info.st_ino))
                        size += max(info.st_size, info.st_blocks * 512)
    return size


class Sandbox:
    """A scratch copy of one submission and a way to run commands against it."""

    def __init__(self, submission: Path, base: Path | None = None) -> None:
        self.submission = submission.resolve()
        self._tmp = tempfile.mkdtemp(prefix="grader-", dir=base)
        self.scratch = Path(self._tmp) / "submission"
        self.bwrap = _bwrap()
        self.as_nobody = self.bwrap is not None and os.geteuid() == 0
        self.user = SandboxUid() if self.as_nobody else None
        self.uv = real_uv()
        self._copy()
        self.extra_ro: list[Path] = []
        self._running: list[Started] = []
        # Without bubblewrap, TMPDIR is a folder beside the copy, under the same caps.
        self._own_tmp = Path(self._tmp) / "tmp"
        self._own_tmp.mkdir()
        self._watched = [self.scratch] if self.bwrap else [self.scratch, self._own_tmp]
        self._baseline = disk_usage(self._watched, 10 * WRITE_ENTRIES)
        self._device = self.scratch.stat().st_dev
        self.overflow: str | None = None  # why commands were stopped, once the caps are passed
        self._closing = threading.Event()
        self._watchdog: threading.Thread | None = None

    # -- the scratch copy -------------------------------------------------------------
    def _copy(self) -> None:
        total = 0

        def ignore(directory: str, names: list[str]) -> set[str]:
            nonlocal total
            skipped = {n for n in names if n in IGNORED or n.endswith(".pyc")}
            for name in names:
                path = Path(directory) / name
                if name not in skipped and path.is_file() and not path.is_symlink():
                    total += path.stat().st_size
            if total > MAX_SUBMISSION_BYTES:
                raise ValueError(
                    f"the submission is larger than {MAX_SUBMISSION_BYTES // 2**20} MiB: "
                    "leave out data files and virtual environments"
                )
            return skipped

        shutil.copytree(self.submission, self.scratch, ignore=ignore, symlinks=True)
        if self.user is not None:
            uid = self.user.uid
            for root, dirs, files in os.walk(self.scratch):
                for name in [*dirs, *files]:
                    os.lchown(Path(root) / name, uid, uid)
            os.chown(self.scratch, uid, uid)

    @property
    def workdir(self) -> Path:
        """The scratch copy as the sandboxed command sees it."""
        return INSIDE if self.bwrap else self.scratch

    @property
    def isolation(self) -> str:
        """What isolation is in force, in words, for the report."""
        limits = (
            f"CPU/memory/process/file-size limits, its folder capped at +{WRITE_BYTES // 2**20} "
            f"MiB and +{WRITE_ENTRIES:,} files, timeouts, scrubbed environment"
        )
        if self.bwrap:
            who = (
                "an unprivileged uid of its own"
                if self.user is not None
                else "the grader's own uid (not root)"
            )
            return (
                f"bubblewrap sandbox ({who}; sees only the system folders, the interpreter, "
                f"the dataset and its scratch copy, never $HOME or other submissions; private "
                f"/tmp of {TMP_BYTES // 2**20} MiB and /dev/shm of {SHM_BYTES // 2**20} MiB; "
                f"no network but loopback; own pid namespace) + {limits}"
            )
        return (
            f"rlimits and timeouts only ({limits}); no file-system or network isolation on "
            f"{platform.system()} without bubblewrap"
        )

    def close(self) -> None:
        for running in self._running:
            if not running.done:
                running.kill()
                running.wait()
        self._running.clear()
        self._closing.set()
        if self._watchdog is not None:
            self._watchdog.join()
        disk_usage([Path(self._tmp)], 10**9)  # makes folders chmod'ed 000 removable
        shutil.rmtree(self._tmp, ignore_errors=True)
        if self.user is not None:
            self.user.release()

    # -- running ----------------------------------------------------------------------
    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        home = str(self.workdir)
        path_dirs = [str(Path(sys.executable).parent)]
        if self.uv:
            path_dirs.append(str(Path(self.uv).parent))
        path_dirs += ["/usr/local/bin", "/usr/bin", "/bin"]
        env = {
            "PATH": os.pathsep.join(dict.fromkeys(path_dirs)),
            "HOME": home,
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "TMPDIR": "/tmp" if self.bwrap else str(self._own_tmp),
            "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            "OMP_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "MPLBACKEND": "Agg",
            "MPLCONFIGDIR": str(Path(home) / ".cache" / "matplotlib"),
            "UV_OFFLINE": "1",
            "UV_NO_PROGRESS": "1",
            "UV_PYTHON_DOWNLOADS": "never",
            "UV_CACHE_DIR": str(Path(home) / ".cache" / "uv"),
            "NO_COLOR": "1",
        }
        if extra:
            env.update(extra)
        return env

    def uv_interpreter(self, request: str | None = None) -> str | None:
        """An interpreter for uv in the sandbox (`UV_PYTHON`), its installation added to what
        the sandbox shows (read-only, nothing else of `$HOME`): uv's own Pythons and pyenv's
        live under the real `$HOME`, which the sandbox hides, and uv skips virtual
        environments' interpreters (a uv installed with pip into a venv found no other).

        `request` is the submission's `.python-version` ("3.13"); the grader's own base
        interpreter serves when it matches, else the one `uv python find` names."""
        mine = f"{sys.version_info.major}.{sys.version_info.minor}"
        wanted = (request or mine).strip()
        if not re.fullmatch(r"\d+\.\d+(\.\d+)?", wanted):
            wanted = mine
        base = getattr(sys, "_base_executable", sys.executable)
        if wanted.startswith(mine) and not wanted.startswith(mine + "0"):
            found: tuple[str, str] | None = (str(Path(base).resolve()), sys.base_prefix)
        else:
            found = self._find_interpreter(wanted)
        if found is None:
            return None
        executable, prefix = found
        self.extra_ro.append(Path(prefix))
        return executable

    def _find_interpreter(self, version: str) -> tuple[str, str] | None:
        """(base executable, base prefix) of the interpreter `uv python find` names."""
        if self.uv is None:
            return None
        try:
            found = subprocess.run([self.uv, "python", "find", version], capture_output=True,
                                   text=True, timeout=30, cwd="/", check=False)  # fmt: skip
            path = found.stdout.strip()
            if found.returncode != 0 or not path:
                return None
            code = "import sys; print(sys._base_executable); print(sys.base_prefix)"
            info = subprocess.run([path, "-I", "-c", code], capture_output=True, text=True,
                                  timeout=30, cwd="/", check=False)  # fmt: skip
        except (OSError, subprocess.TimeoutExpired):
            return None
        lines = info.stdout.split("\n")
        if info.returncode != 0 or len(lines) < 2:
            return None
        return str(Path(lines[0]).resolve()), lines[1]

    def needed(self) -> list[Path]:
        """What a run needs to see besides the system: the grader's interpreter and its
        environment, the grader's own code (the probes), uv and the interpreters it may pick,
        and `extra_ro` (the dataset, the student's locked environment)."""
        paths = [Path(sys.prefix), Path(sys.base_prefix), Path(sys.executable).resolve()]
        paths.append(Path(__file__).resolve().parent)
        if self.uv:
            paths.append(Path(self.uv))
        paths += self.extra_ro
        return paths

    def _visible(self) -> list[str]:
        """Read-only binds of the system folders, a few files of /etc, and `needed()`: the
        sandbox's root is an empty tmpfs, so the host's `/`, `$HOME`, other students, the
        course repository and the grader's outputs are simply not there. The folders on the
        way to a bound path are created empty (0755)."""
        args: list[str] = []
        bound: list[Path] = []
        for top in SYSTEM:
            path = Path(top)
            if path.is_symlink():
                args += ["--symlink", os.readlink(path), top]
            elif path.is_dir():
                args += ["--ro-bind", top, top]
                bound.append(path)
        args += ["--perms", "0755", "--dir", "/etc"]
        for name in ETC:
            path = Path("/etc") / name
            if path.exists():
                args += ["--ro-bind", str(path), str(path)]
        args += [
            "--perms", "1777", "--size", str(TMP_BYTES), "--tmpfs", "/tmp",
            "--perms", "1777", "--size", str(SHM_BYTES), "--tmpfs", "/dev/shm",
        ]  # fmt: skip
        made: set[Path] = {Path("/"), Path("/tmp"), Path("/etc")}
        for path in sorted({p.resolve() for p in self.needed() if p.exists()}):
            if any(path.is_relative_to(b) for b in bound):
                continue
            for parent in reversed(path.parents):
                if parent not in made:
                    made.add(parent)
                    args += ["--perms", "0755", "--dir", str(parent)]
            args += ["--ro-bind", str(path), str(path)]
            bound.append(path)
        return args

    def _bwrap_args(self) -> list[str]:
        assert self.bwrap is not None
        args = [self.bwrap, "--dev", "/dev", "--proc", "/proc", *self._visible()]
        args += [
            "--bind", str(self.scratch), str(INSIDE),
            "--chdir", str(INSIDE),
            "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
            "--die-with-parent", "--new-session",
        ]  # fmt: skip
        if self.user is not None:
            # From the system folders only: the sandbox shows those, not the caller's PATH.
            setpriv = shutil.which("setpriv", path="/usr/bin:/bin:/usr/sbin:/sbin")
            uid = self.user.uid
            if setpriv:
                args += ["--", setpriv, f"--reuid={uid}", f"--regid={uid}"]
                args += ["--clear-groups", "--inh-caps=-all", "--bounding-set=-all"]
            else:
                args += ["--cap-drop", "ALL", "--"]
        else:
            args += ["--"]
        return args

    def start(
        self,
        command: Sequence[str],
        limits: Limits | None = None,
        env: Mapping[str, str] | None = None,
        stdin: bool = False,
        result_fd: bool = False,
    ) -> Started:
        """Start `command` in the scratch copy, within the limits, and return at once.

        `Started.wait()` collects the result (the wall-clock limit counts from here). With
        `stdin=True` the command's standard input stays open until `wait(text)` writes it: a
        probe can import its libraries while train.py still runs, then read its request.

        Output is drained while the command runs and only the last `OUTPUT_KEPT` bytes of each
        stream are kept, whatever it prints. With `result_fd=True` the command gets one more
        descriptor, an unlinked file of the grader's, whose number is appended to `command` as
        `--result-fd N`: a probe writes its result there (`RunResult.result_text`), where no
        print of student code can reach or push it out."""
        limits = limits or Limits()
        command = list(command)
        result_file = None
        pass_fds: tuple[int, ...] = ()
        if result_fd:
            result_file = tempfile.TemporaryFile(dir=self._tmp)  # noqa: SIM115 - Started closes it
            pass_fds = (result_file.fileno(),)
            command += ["--result-fd", str(result_file.fileno())]
        full = [*self._bwrap_args(), *command] if self.bwrap else list(command)
        program = _no_fallocate()
        seccomp = None
        if self.bwrap and program is not None:
            seccomp, write_end = os.pipe()  # bubblewrap reads the filter from it
            os.write(write_end, program)
            os.close(write_end)
            pass_fds += (seccomp,)
            full[1:1] = ["--seccomp", str(seccomp)]

        def preexec() -> None:
            if resource is None:
                return
            cpu = (limits.cpu_seconds, limits.cpu_seconds + 5)
            resource.setrlimit(resource.RLIMIT_CPU, cpu)
            resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_bytes, limits.file_bytes))
            if platform.system() == "Linux":  # macOS refuses RLIMIT_AS below its current value
                resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
            if self.as_nobody or os.geteuid() != 0:
                resource.setrlimit(resource.RLIMIT_NPROC, (limits.processes, limits.processes))
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

        started = time.monotonic()
        proc = subprocess.Popen(
            full,
            cwd=self.scratch,
            env=self.env(env),
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=pass_fds,
            start_new_session=True,
            preexec_fn=preexec,
        )
        if seccomp is not None:
            os.close(seccomp)
        if result_fd:
            command = command[:-2]
        shown = (
            list(command)
            if not self.bwrap
            else [str(c).replace(str(self.scratch), str(INSIDE)) for c in command]
        )
        running = Started(proc, shown, limits, started, result_file, self.over_caps)
        self._running.append(running)
        if self._watchdog is None:
            self._watchdog = threading.Thread(target=self._watch, daemon=True)
            self._watchdog.start()
        return running

    def _watch(self) -> None:
        """Measure the scratch copy every `WATCH_SECONDS` while a command runs (less often
        when a walk is slow: at most a tenth of a core); past the caps (`WRITE_BYTES`,
        `WRITE_ENTRIES` beyond the submitted files), kill every running command's process
        group. Unlike a quota this needs no privilege and works without bubblewrap; the
        overshoot is what was written in one interval."""
        tick = 0
        while not self._closing.is_set():
            alive = [r for r in list(self._running) if r.proc.returncode is None]
            began = time.monotonic()
            tick += 1  # files deleted while open: every 10th time (reading /proc costs more)
            pids = [r.proc.pid for r in alive] if tick % 10 == 0 else []
            if alive and self.over_caps(pids) is not None:
                for running in alive:
                    running.stopped = self.overflow
                    running.kill()
            self._closing.wait(max(WATCH_SECONDS, 10 * (time.monotonic() - began)))

    def over_caps(self, pids: Sequence[int] = ()) -> str | None:
        """Why the scratch copy is past its caps (measured now; once past, it stays so); the
        files `pids` and their children deleted but hold open count too."""
        if self.overflow is None:
            base_bytes, base_entries = self._baseline
            most = base_entries + WRITE_ENTRIES
            size, entries = disk_usage(self._watched, most)
            if pids and platform.system() == "Linux":
                size += held_deleted(pids, self._device)
            if entries > most:
                self.overflow = (
                    f"your code created more than {WRITE_ENTRIES:,} files and folders in its "
                    "folder: write only the files the assignment asks for"
                )
            elif size > base_bytes + WRITE_BYTES:
                self.overflow = (
                    f"your code wrote more than {WRITE_BYTES // 2**20} MiB into its folder "
                    f"({(size - base_bytes) // 2**20} MiB seen): keep only the files the "
                    "assignment asks for, small, and delete temporary ones"
                )
        return self.overflow

    def run(
        self,
        command: Sequence[str],
        limits: Limits | None = None,
        stdin: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> RunResult:
        """Run `command` in the scratch copy, within the limits; never raises for its failures."""
        return self.start(command, limits, env, stdin=stdin is not None).wait(stdin)

    def python(self, script: Path, *args: str, **kwargs: object) -> RunResult:
        """Run one of the grader's probe scripts with the grader's interpreter."""
        return self.run([sys.executable, "-I", str(script), *args], **kwargs)  # type: ignore[arg-type]


class _Tail:
    """Drains one of the child's pipes in a thread, keeping only its last `keep` bytes: the
    grader's memory stays flat whatever the child prints (1 GB of output, measured: ~1 s)."""

    def __init__(self, stream: IO[bytes], keep: int = OUTPUT_KEPT) -> None:
        self.stream = stream
        self.keep = keep
        self.buffer = bytearray()
        self.total = 0
        self.thread = threading.Thread(target=self._drain, daemon=True)
        self.thread.start()

    def _drain(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            while chunk := self.stream.read1(1 << 16):  # type: ignore[attr-defined]
                self.total += len(chunk)
                self.buffer += chunk
                if len(self.buffer) > 2 * self.keep:
                    del self.buffer[: -self.keep]

    def text(self, timeout: float) -> str:
        """The kept tail, once the pipe is closed (or after `timeout` s: a grandchild that
        escaped the kill may hold it open)."""
        self.thread.join(timeout)
        data = bytes(self.buffer[-self.keep :])
        return data.decode(errors="replace")


class Started:
    """A sandboxed command running in the background (`Sandbox.start`)."""

    def __init__(
        self,
        proc: subprocess.Popen[bytes],
        command: list[str],
        limits: Limits,
        started: float,
        result_file: IO[bytes] | None = None,
        over_caps: Callable[[], str | None] | None = None,
    ) -> None:
        self.proc = proc
        self.over_caps = over_caps
        self.command = command
        self.limits = limits
        self.started = started
        self.result_file = result_file
        self.stopped: str | None = None  # set by the sandbox's watchdog before it kills
        assert proc.stdout is not None and proc.stderr is not None
        self._out = _Tail(proc.stdout)
        self._err = _Tail(proc.stderr)
        self._result: RunResult | None = None

    @property
    def done(self) -> bool:
        return self._result is not None

    def wait(self, stdin: str | None = None) -> RunResult:
        """Write `stdin` (if its input was kept open), wait within the wall-clock limit."""
        if self._result is not None:
            return self._result
        proc = self.proc
        if proc.stdin is not None:
            with contextlib.suppress(BrokenPipeError, ValueError, OSError):
                if stdin:
                    proc.stdin.write(stdin.encode())
                proc.stdin.close()
        remaining = max(0.0, self.started + self.limits.wall_seconds - time.monotonic())
        timed_out = False
        try:
            proc.wait(timeout=remaining)
        except subprocess.TimeoutExpired:
            timed_out = True
            self.kill()
            proc.wait()
        # The process group is gone; bubblewrap's pid namespace went with its init.
        if self.stopped is None and self.over_caps is not None:
            self.stopped = self.over_caps()  # it passed the caps and ended before the watchdog saw
        stdout, stderr = self._out.text(5.0), self._err.text(5.0)
        for tail in (self._out, self._err):
            if not tail.thread.is_alive():  # else closing would wait for its blocked read
                with contextlib.suppress(OSError):
                    tail.stream.close()
        result_text = None
        if self.result_file is not None:
            self.result_file.seek(0)
            result_text = self.result_file.read(RESULT_BYTES).decode(errors="replace")
            self.result_file.close()
        self._result = RunResult(
            command=self.command,
            returncode=proc.returncode,
            stdout=stdout,
            stderr=stderr,
            seconds=time.monotonic() - self.started,
            timed_out=timed_out,
            result_text=result_text,
            stopped=self.stopped,
        )
        return self._result

    def kill(self) -> None:
        """Kill its process group (no-op once it has exited)."""
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
