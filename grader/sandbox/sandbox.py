"""`Sandbox`: a scratch copy of one submission, and the way to run commands against it."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO

from grader.sandbox import bwrap, reaper
from grader.sandbox.process import Limits, Process, RunResult
from grader.sandbox.uids import SandboxUid
from grader.sandbox.watchdog import WRITE_BYTES, WRITE_ENTRIES, Caps, disk_usage

try:
    import resource
except ImportError:  # Windows: no rlimits
    resource = None  # type: ignore[assignment]

# Folders and files never copied into the scratch copy: environments, caches, version control.
NOT_COPIED = (".venv", "venv", "__pycache__", ".git", ".pytest_cache", ".mypy_cache", ".ruff_cache")
MAX_SUBMISSION_BYTES = 200 * 1024 * 1024


class Unreachable(RuntimeError):
    """Without bubblewrap, the unprivileged uid of student code cannot run the interpreter."""


class SubmissionTooLarge(ValueError):
    """The submission exceeds `MAX_SUBMISSION_BYTES` (the message says what to leave out)."""


class Sandbox:
    """A scratch copy of one submission and a way to run commands against it.

    `visible`: what a command may see besides the system folders and the grader's own
    interpreter (read-only): the dataset, the locked environment, the probes, uv."""

    def __init__(
        self,
        submission: Path,
        visible: Iterable[Path] = (),
        uv: str | None = None,
        base: Path | None = None,
    ) -> None:
        self.submission = submission.resolve()
        self.uv = uv
        self._tmp = tempfile.mkdtemp(prefix="grader-", dir=base)
        self.scratch = Path(self._tmp) / "submission"
        self.bwrap = bwrap.bwrap_available()
        # As root, commands run as a uid of their own, with or without bubblewrap: never root.
        self.own_uid = os.geteuid() == 0
        self.user = SandboxUid() if self.own_uid else None
        self.visible = [*self._interpreter(), *visible]
        self._started_at = reaper.start_ticks()
        self._subreaper = self.bwrap is None and not self.own_uid and reaper.become_subreaper()
        self._copy()
        self._running: list[Process] = []
        # Without bubblewrap, TMPDIR is a folder beside the copy, under the same caps.
        self._own_tmp = Path(self._tmp) / "tmp"
        self._own_tmp.mkdir()
        if self.user is not None and self.bwrap is None:
            os.chmod(self._tmp, 0o711)  # its uid reaches the copy and TMPDIR, nothing else here
            self.give(self._own_tmp)
        watched = [self.scratch] if self.bwrap else [self.scratch, self._own_tmp]
        self.caps = Caps(watched, self.scratch.stat().st_dev)

    @staticmethod
    def _interpreter() -> list[Path]:
        """The grader's own interpreter and its environment (student code without a lock)."""
        return [Path(sys.prefix), Path(sys.base_prefix), Path(sys.executable).resolve()]

    # -- the scratch copy -------------------------------------------------------------
    def _copy(self) -> None:
        total = 0

        def ignore(directory: str, names: list[str]) -> set[str]:
            nonlocal total
            skipped = {n for n in names if n in NOT_COPIED or n.endswith(".pyc")}
            for name in names:
                path = Path(directory) / name
                if name not in skipped and path.is_file() and not path.is_symlink():
                    total += path.stat().st_size
            if total > MAX_SUBMISSION_BYTES:
                raise SubmissionTooLarge(
                    f"the submission is larger than {MAX_SUBMISSION_BYTES // 2**20} MiB: "
                    "leave out data files and virtual environments"
                )
            return skipped

        shutil.copytree(self.submission, self.scratch, ignore=ignore, symlinks=True)
        if self.user is not None:
            self.give(self.scratch)

    def give(self, path: Path) -> None:
        """`path` (and what is under it) to the sandbox's uid, links themselves not followed."""
        if self.user is None:
            return
        uid = self.user.uid
        for root, dirs, names in os.walk(path):
            for name in [*dirs, *names]:
                os.lchown(Path(root) / name, uid, uid)
        os.lchown(path, uid, uid)

    @property
    def workdir(self) -> Path:
        """The scratch copy as the sandboxed command sees it."""
        return bwrap.INSIDE if self.bwrap else self.scratch

    @property
    def mode(self) -> str:
        """ "bubblewrap", "uid" (no bubblewrap, an unprivileged uid of its own) or "none"
        (no bubblewrap, the grader's own uid)."""
        if self.bwrap:
            return "bubblewrap"
        return "uid" if self.user is not None else "none"

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
                f"/tmp of {bwrap.TMP_BYTES // 2**20} MiB and /dev/shm of "
                f"{bwrap.SHM_BYTES // 2**20} MiB; no network but loopback; own pid namespace) "
                f"+ {limits}"
            )
        who = (
            "an unprivileged uid of its own (it cannot read the grader's files or the seed)"
            if self.user is not None
            else "the grader's own uid"
        )
        return (
            f"NO SANDBOX: student code ran as {who} with rlimits and timeouts only ({limits}); "
            f"no file-system or network isolation on {platform.system()} without bubblewrap"
        )

    def close(self) -> None:
        for running in self._running:
            if not running.done:
                running.kill()
                running.wait()
        if self.user is not None:  # what escaped its process group (setsid, double forks)
            reaper.kill_uid(self.user.uid)
        elif self._subreaper:
            reaper.kill_orphans({r.proc.pid for r in self._running}, self._started_at)
        self._running.clear()
        self.caps.stop()
        disk_usage([Path(self._tmp)], 10**9)  # makes folders chmod'ed 000 removable
        shutil.rmtree(self._tmp, ignore_errors=True)
        if self.user is not None:
            self.user.release()

    # -- running ----------------------------------------------------------------------
    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """A command's whole environment: nothing of the grader's."""
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

    def start(
        self,
        command: Sequence[str],
        limits: Limits | None = None,
        env: Mapping[str, str] | None = None,
        stdin: bool = False,
        result_fd: bool = False,
    ) -> Process:
        """Start `command` in the scratch copy, within the limits, and return at once.

        `Process.wait()` collects the result (the wall-clock limit counts from here). With
        `stdin=True` the command's standard input stays open until `wait(text)` writes it: a
        probe can import its libraries while train.py still runs, then read its request.

        Output is drained while the command runs and only its tail is kept. With
        `result_fd=True` the command gets one more descriptor, an unlinked file of the
        grader's, whose number is appended to `command` as `--result-fd N`: a probe writes its
        result there (`RunResult.result_text`), where no print of student code can reach."""
        limits = limits or Limits()
        command = list(command)
        result_file = None
        pass_fds: tuple[int, ...] = ()
        if result_fd:
            result_file = tempfile.TemporaryFile(dir=self._tmp)  # noqa: SIM115 - Process closes it
            pass_fds = (result_file.fileno(),)
            command += ["--result-fd", str(result_file.fileno())]
        full, closing = (list(command), []) if not self.bwrap else self._in_bwrap(command)
        pass_fds += tuple(file.fileno() for file in closing)
        preexec = self._limits_in_child(limits)
        started = time.monotonic()
        try:
            proc = subprocess_popen(full, self.scratch, self.env(env), stdin, pass_fds, preexec)
        except PermissionError as e:
            raise Unreachable(
                f"{command[0]} cannot be run by the unprivileged user student code runs as "
                f"without bubblewrap ({e.strerror}): install bubblewrap (`grade setup`, as root), "
                "or Python and the grader where every user can read them (not under /root)"
            ) from None
        finally:
            for file in closing:
                file.close()
        if result_fd:
            command = command[:-2]
        shown = (
            command
            if not self.bwrap
            else [str(c).replace(str(self.scratch), str(bwrap.INSIDE)) for c in command]
        )
        running = Process(proc, shown, limits, started, result_file, self.caps.over)
        self._running.append(running)
        self.caps.watch(self._running)
        return running

    def _in_bwrap(self, command: list[str]) -> tuple[list[str], list[IO[bytes]]]:
        """`command` in bubblewrap, and the files it reads its options (and seccomp filter)
        from: its options come from a file, not its command line, so the /proc/1/cmdline the
        sandboxed command sees (its pid 1 is bubblewrap's) shows nothing of the host's paths."""
        assert self.bwrap is not None
        uid = self.user.uid if self.user is not None else None
        args = bwrap.arguments(self.bwrap, self.scratch, self.visible, uid)[1:]
        split = args.index("--")  # options in the file, the command on the command line
        args, after = args[:split], args[split:]
        files: list[IO[bytes]] = []
        program = bwrap.no_fallocate()
        if program is not None:
            seccomp = _unlinked(self._tmp, program)  # bubblewrap reads the filter from it
            files.append(seccomp)
            args[0:0] = ["--seccomp", str(seccomp.fileno())]
        listed = _unlinked(self._tmp, b"".join(a.encode() + b"\0" for a in args))
        files.append(listed)
        return [self.bwrap, "--args", str(listed.fileno()), *after, *command], files

    def _limits_in_child(self, limits: Limits) -> Callable[[], None]:
        """The function that sets the rlimits in the child, before it executes (and, without
        bubblewrap, drops to the sandbox's own uid: bubblewrap does it with setpriv)."""
        nproc = self.own_uid or os.geteuid() != 0
        drop = self.user.uid if self.user is not None and self.bwrap is None else None

        def preexec() -> None:
            if drop is not None:
                os.setgroups([])
                os.setresgid(drop, drop, drop)
                os.setresuid(drop, drop, drop)
            if resource is None:
                return
            cpu = (limits.cpu_seconds, limits.cpu_seconds + 5)
            resource.setrlimit(resource.RLIMIT_CPU, cpu)
            resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_bytes, limits.file_bytes))
            if platform.system() == "Linux":  # macOS refuses RLIMIT_AS below its current value
                resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
            if nproc:
                resource.setrlimit(resource.RLIMIT_NPROC, (limits.processes, limits.processes))
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

        return preexec

    def run(
        self,
        command: Sequence[str],
        limits: Limits | None = None,
        stdin: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> RunResult:
        """Run `command` in the scratch copy, within the limits; never raises for its failures."""
        return self.start(command, limits, env, stdin=stdin is not None).wait(stdin)


def _unlinked(folder: str, data: bytes) -> IO[bytes]:
    """An unlinked file holding `data`, read from its start (for bubblewrap's descriptors)."""
    file = tempfile.TemporaryFile(dir=folder)  # noqa: SIM115 - closed once the child started
    file.write(data)
    file.flush()
    file.seek(0)
    return file


def subprocess_popen(
    argv: list[str],
    cwd: Path,
    env: dict[str, str],
    stdin: bool,
    pass_fds: tuple[int, ...],
    preexec: Callable[[], None],
) -> subprocess.Popen[bytes]:
    """The child: its own session (killable as a group), output on pipes."""
    return subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        pass_fds=pass_fds,
        start_new_session=True,
        preexec_fn=preexec,
    )
