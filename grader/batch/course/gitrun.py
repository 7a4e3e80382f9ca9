"""Git on a student's repository, within limits: a size, a file count and one deadline for
all the commands of one clone; past any of them the command's process group is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

CLONE_MAX_MB = 200
CLONE_SECONDS = 180.0
MAX_FILES = 20_000


@dataclass(frozen=True)
class Limits:
    max_bytes: int = CLONE_MAX_MB * 10**6
    seconds: float = CLONE_SECONDS
    max_files: int = MAX_FILES


class LimitExceeded(Exception):
    """The clone went past its size, file-count or time limit (and was killed)."""


def disk_usage(folder: Path, stop_at: int) -> tuple[int, int]:
    """(bytes, files) under folder, symlinks not followed; stops counting past stop_at files."""
    size = files = 0
    for root, dirs, names in os.walk(folder):
        for name in names:
            try:
                size += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                continue
            files += 1
        if files > stop_at:
            break
        dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(root, d))]
    return size, files


@dataclass
class Git:
    """Runs git commands on one repository within shared limits (size, files, one deadline)."""

    config: list[str]
    env: dict[str, str]
    watch: Path
    limits: Limits
    deadline: float

    def run(self, *args: str, cwd: Path | None = None) -> tuple[int, str, str]:
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            proc = subprocess.Popen(
                ["git", *self.config, *args],
                cwd=cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
            try:
                self._watch(proc)
            finally:
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
            out.seek(0)
            err.seek(0)
            stdout = out.read(4_000_000).decode(errors="replace")
            return proc.returncode, stdout, err.read(20_000).decode(errors="replace")

    def _watch(self, proc: subprocess.Popen[bytes]) -> None:
        while proc.poll() is None:
            if time.monotonic() > self.deadline:
                raise LimitExceeded(f"took longer than {self.limits.seconds:.0f} s")
            size, files = disk_usage(self.watch, self.limits.max_files)
            if size > self.limits.max_bytes:
                raise LimitExceeded(f"is larger than {self.limits.max_bytes / 1e6:.0f} MB")
            if files > self.limits.max_files:
                raise LimitExceeded(f"has more than {self.limits.max_files} files")
            time.sleep(0.1)
