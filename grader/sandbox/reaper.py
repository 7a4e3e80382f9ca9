"""Every process a sandbox started is gone when it closes, double forks and `setsid` included.

Under bubblewrap a command's processes live in a pid namespace of their own, which dies with
its first process. Without it, a sandbox run as root gives its commands a uid of their own
(`uids.py`), and `kill_uid` ends whatever still runs under that uid; a sandbox run by an
ordinary user makes the grader the subreaper of its commands' orphans (Linux), and
`kill_orphans` ends the ones it adopted."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
from pathlib import Path

PR_SET_CHILD_SUBREAPER = 36


def _status(pid: str, field: str) -> str:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def pids_of_uid(uid: int) -> list[int]:
    """The processes whose real, effective or saved uid is `uid`."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and str(uid) in _status(entry, "Uid").split()[:3]:
            found.append(int(entry))
    return found


def kill_uid(uid: int, rounds: int = 20) -> None:
    """SIGKILL every process of `uid` until none is left (a fork loop may need a few rounds)."""
    for _ in range(rounds):
        pids = pids_of_uid(uid)
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass


def become_subreaper() -> bool:
    """Make this process adopt its descendants' orphans (Linux); False where it cannot."""
    try:
        return bool(
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
        )
    except (OSError, AttributeError):
        return False


def orphans(keep: set[int], since: float) -> list[int]:
    """The children of this process not in `keep`, started after `since` (clock ticks since
    boot, /proc/<pid>/stat's field 22): orphans a sandbox's commands left behind."""
    me = str(os.getpid())
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in keep:
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            if fields[1] == me and int(fields[19]) >= since:
                found.append(int(entry))
    return found


def start_ticks() -> float:
    """This moment in /proc's clock (ticks since boot)."""
    try:
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError):
        return 0.0
    return uptime * os.sysconf("SC_CLK_TCK")


def kill_orphans(keep: set[int], since: float) -> None:
    for _ in range(20):
        pids = orphans(keep, since)
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
