"""Run untrusted student code in a child process with limits and, where possible, isolation.

On Linux with bubblewrap (`bwrap`) the child sees the host file system read-only, a private
`/tmp`, the scratch copy of the submission as its only writable place, a network namespace of
its own (loopback only) and a pid namespace of its own. When the grader runs as root, the child
also drops to an unprivileged uid of its own sandbox (`SandboxUid`), so that the process-count
limit applies and counts that sandbox's processes only. Everywhere, the child gets
rlimits (CPU, memory, processes, file size), a wall-clock timeout and a scrubbed environment.
Where bubblewrap is missing the grader still runs, with rlimits and timeouts only, and
`Sandbox.isolation` says so (it is printed with every report).
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
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

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out

    def tail(self, lines: int = 15) -> str:
        """The last lines of stderr and stdout, for the student's feedback."""
        text = "\n".join(part for part in (self.stdout.strip(), self.stderr.strip()) if part)
        kept = [line for line in text.splitlines() if not line.startswith(RESULT_MARK)]
        return "\n".join(kept[-lines:])

    def describe(self) -> str:
        """One line: how the command ended."""
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
        limits = "CPU/memory/process/file-size limits, timeouts, scrubbed environment"
        if self.bwrap:
            who = "an unprivileged uid of its own, " if self.user is not None else ""
            return (
                f"bubblewrap sandbox ({who}read-only file system, private /tmp, no network "
                f"but loopback, own pid namespace) + {limits}"
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
            "TMPDIR": "/tmp" if self.bwrap else str(Path(self._tmp)),
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

    def _show_again(self, hidden: Path) -> list[str]:
        """Read-only binds for what the child needs from under a folder the sandbox hides (a
        grader installed under /tmp, as a CI checkout may be): its interpreter, the grader's
        own code, uv and the dataset. The folders on the way are created empty (0755)."""
        needed = [Path(sys.prefix), Path(sys.base_prefix), Path(sys.executable).resolve()]
        needed.append(Path(__file__).resolve().parent)
        if self.uv:
            needed.append(Path(self.uv))
        needed += self.extra_ro
        args: list[str] = []
        made: set[Path] = set()
        for path in sorted({p.resolve() for p in needed if p.exists()}):
            if not path.is_relative_to(hidden) or path == hidden:
                continue
            for parent in reversed(path.relative_to(hidden).parents[:-1]):
                folder = hidden / parent
                if folder not in made:
                    made.add(folder)
                    args += ["--perms", "0755", "--dir", str(folder)]
            args += ["--ro-bind", str(path), str(path)]
        return args

    def _bwrap_args(self) -> list[str]:
        assert self.bwrap is not None
        args = [
            self.bwrap,
            "--ro-bind", "/", "/",
            "--dev", "/dev",
            "--proc", "/proc",
            "--perms", "1777", "--tmpfs", "/tmp",
            "--perms", "1777", "--tmpfs", "/dev/shm",
        ]  # fmt: skip
        args += self._show_again(Path("/tmp"))
        if self.as_nobody:
            # /root is not readable by the sandbox uid: hide it, then show what the child needs.
            home = Path("/root")
            args += ["--perms", "0755", "--tmpfs", str(home)]
            needed = [Path(sys.prefix), Path(sys.base_prefix), Path(sys.executable).resolve()]
            if self.uv:
                needed.append(Path(self.uv))
            needed += self.extra_ro
            # Bind the top folder under /root (folders bwrap creates on the way are 0700).
            tops = {home / p.relative_to(home).parts[0] for p in needed if p.is_relative_to(home)}
            for top in sorted(tops):
                if top.exists():
                    args += ["--ro-bind", str(top), str(top)]
        args += [
            "--bind", str(self.scratch), str(INSIDE),
            "--chdir", str(INSIDE),
            "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
            "--die-with-parent", "--new-session",
        ]  # fmt: skip
        if self.user is not None:
            setpriv = shutil.which("setpriv")
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
        if result_fd:
            command = command[:-2]
        shown = (
            list(command)
            if not self.bwrap
            else [str(c).replace(str(self.scratch), str(INSIDE)) for c in command]
        )
        running = Started(proc, shown, limits, started, result_file)
        self._running.append(running)
        return running

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
    ) -> None:
        self.proc = proc
        self.command = command
        self.limits = limits
        self.started = started
        self.result_file = result_file
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
        )
        return self._result

    def kill(self) -> None:
        """Kill its process group (no-op once it has exited)."""
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
