"""Run untrusted student code in a child process with limits and, where possible, isolation.

On Linux with bubblewrap (`bwrap`) the child sees the host file system read-only, a private
`/tmp`, the scratch copy of the submission as its only writable place, a network namespace of
its own (loopback only) and a pid namespace of its own. When the grader runs as root, the child
also drops to user `nobody` so that the process-count limit applies. Everywhere, the child gets
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
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

try:
    import resource
except ImportError:  # Windows: no rlimits
    resource = None  # type: ignore[assignment]

# Where the scratch copy appears inside the bubblewrap sandbox.
INSIDE = Path("/tmp/submission")
NOBODY = 65534
IGNORED = (".venv", "venv", "__pycache__", ".git", ".pytest_cache", ".mypy_cache", ".ruff_cache")
MAX_SUBMISSION_BYTES = 200 * 1024 * 1024
RESULT_MARK = "GRADER-RESULT"


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
        """The JSON a probe printed on its `GRADER-RESULT <nonce>` line, if any."""
        prefix = f"{RESULT_MARK} {nonce} "
        for line in reversed(self.stdout.splitlines()):
            if line.startswith(prefix):
                value = json.loads(line[len(prefix) :])
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
        if self.as_nobody:
            for root, dirs, files in os.walk(self.scratch):
                for name in [*dirs, *files]:
                    os.lchown(Path(root) / name, NOBODY, NOBODY)
            os.chown(self.scratch, NOBODY, NOBODY)

    @property
    def workdir(self) -> Path:
        """The scratch copy as the sandboxed command sees it."""
        return INSIDE if self.bwrap else self.scratch

    @property
    def isolation(self) -> str:
        """What isolation is in force, in words, for the report."""
        limits = "CPU/memory/process/file-size limits, timeouts, scrubbed environment"
        if self.bwrap:
            who = "user nobody, " if self.as_nobody else ""
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
        if self.as_nobody:
            # /root is not readable by nobody: hide it, then show what the child needs from it.
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
        if self.as_nobody:
            setpriv = shutil.which("setpriv")
            if setpriv:
                args += ["--", setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}"]
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
    ) -> Started:
        """Start `command` in the scratch copy, within the limits, and return at once.

        `Started.wait()` collects the result (the wall-clock limit counts from here). With
        `stdin=True` the command's standard input stays open until `wait(text)` writes it: a
        probe can import its libraries while train.py still runs, then read its request."""
        limits = limits or Limits()
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
            text=True,
            errors="replace",
            start_new_session=True,
            preexec_fn=preexec,
        )
        shown = (
            list(command)
            if not self.bwrap
            else [str(c).replace(str(self.scratch), str(INSIDE)) for c in command]
        )
        running = Started(proc, shown, limits, started)
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


class Started:
    """A sandboxed command running in the background (`Sandbox.start`)."""

    def __init__(
        self, proc: subprocess.Popen[str], command: list[str], limits: Limits, started: float
    ) -> None:
        self.proc = proc
        self.command = command
        self.limits = limits
        self.started = started
        self._result: RunResult | None = None

    @property
    def done(self) -> bool:
        return self._result is not None

    def wait(self, stdin: str | None = None) -> RunResult:
        """Write `stdin` (if its input was kept open), wait within the wall-clock limit."""
        if self._result is not None:
            return self._result
        proc = self.proc
        remaining = max(0.0, self.started + self.limits.wall_seconds - time.monotonic())
        timed_out = False
        try:
            out, err = proc.communicate(stdin, timeout=remaining)
        except subprocess.TimeoutExpired:
            timed_out = True
            self.kill()
            out, err = proc.communicate()
        except (BrokenPipeError, ValueError):  # it exited without reading its input
            out, err = proc.communicate()
        self._result = RunResult(
            command=self.command,
            returncode=proc.returncode,
            stdout=(out or "")[-200_000:],
            stderr=(err or "")[-200_000:],
            seconds=time.monotonic() - self.started,
            timed_out=timed_out,
        )
        return self._result

    def kill(self) -> None:
        """Kill its process group (no-op once it has exited)."""
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
