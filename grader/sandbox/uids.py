"""Unprivileged uids for sandboxes run as root, one per live sandbox."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from grader.sandbox.owned import open_lock, own_dir

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

# No user has these uids (far above the subordinate-uid ranges of rootless containers,
# 100000-165535 and up).
UID_BASE = 1_500_000_000
UID_SLOTS = 10_000


def locks_folder() -> Path:
    """The uid locks' folder: the grader's own (checked on every use)."""
    return Path(tempfile.gettempdir()) / "grader-uids"


class SandboxUid:
    """An unprivileged uid held by one sandbox for its life (a lock file per uid, flock'ed).

    RLIMIT_NPROC counts every process of a uid on the machine, so a uid of its own per
    sandbox keeps one student's fork bomb to that student. The lock goes with the grader
    process, however it ends."""

    def __init__(self) -> None:
        assert fcntl is not None
        folder = own_dir(locks_folder(), 0o700)
        start = os.getpid() % UID_SLOTS
        for i in range(UID_SLOTS):
            uid = UID_BASE + (start + i) % UID_SLOTS
            fd = open_lock(folder / str(uid))
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                continue
            self.uid = uid
            self._fd: int | None = fd
            return
        raise RuntimeError(f"all {UID_SLOTS} sandbox uids are in use ({folder})")

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None


def unreachable(paths: list[Path]) -> list[Path]:
    """The `paths` an unprivileged uid cannot read (or, for a file, run): a sandbox without
    bubblewrap runs student code as one, and it must reach the interpreter it runs with."""
    if os.geteuid() != 0:
        return []
    holder = SandboxUid()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: as the sandbox's uid, try each path
        code = 0
        try:
            os.close(read_end)
            os.setgroups([])
            os.setresgid(holder.uid, holder.uid, holder.uid)
            os.setresuid(holder.uid, holder.uid, holder.uid)
            bad = [str(p) for p in paths if not os.access(p, os.R_OK)]
            os.write(write_end, "\n".join(bad).encode())
        except BaseException:
            os.write(write_end, "\n".join(map(str, paths)).encode())
            code = 1
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as f:
        text = f.read().decode()
    os.waitpid(pid, 0)
    holder.release()
    return [Path(line) for line in text.splitlines() if line]
