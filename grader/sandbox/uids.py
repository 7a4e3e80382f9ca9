"""Unprivileged uids for sandboxes run as root, one per live sandbox."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

# No user has these uids (far above the subordinate-uid ranges of rootless containers,
# 100000-165535 and up).
UID_BASE = 1_500_000_000
UID_SLOTS = 10_000
UID_LOCKS = Path(tempfile.gettempdir()) / "grader-uids"


class SandboxUid:
    """An unprivileged uid held by one sandbox for its life (a lock file per uid, flock'ed).

    RLIMIT_NPROC counts every process of a uid on the machine, so a uid of its own per
    sandbox keeps one student's fork bomb to that student. The lock goes with the grader
    process, however it ends."""

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
