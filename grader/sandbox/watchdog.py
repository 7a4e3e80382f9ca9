"""What commands add to the scratch copy, measured while they run (bytes and entries, and files
deleted while still open: Linux /proc), and the watchdog that stops them past the caps."""

from __future__ import annotations

import contextlib
import os
import platform
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from grader.sandbox.process import Process

WRITE_BYTES = 512 * 1024**2  # what commands may add to the scratch copy, all together (disk)
WRITE_ENTRIES = 10_000  # files and folders they may add to it
WATCH_SECONDS = 0.1  # how often the scratch copy is measured while a command runs (at most)


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


def _children() -> dict[int, list[int]]:
    """Every process's children, from /proc/*/stat."""
    children: dict[int, list[int]] = {}
    with contextlib.suppress(OSError):
        for name in os.listdir("/proc"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                if name.isdigit():
                    with open(f"/proc/{name}/stat", "rb") as stat:
                        parent = int(stat.read().rsplit(b")", 1)[1].split()[1])
                    children.setdefault(parent, []).append(int(name))
    return children


def held_deleted(pids: Sequence[int], device: int) -> int:
    """Bytes of files on `device` deleted but still open in `pids` or their descendants (Linux
    /proc; 0 elsewhere): a file unlinked while open keeps its disk until it is closed."""
    children = _children()
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


class Caps:
    """The caps on what a sandbox's commands add to its folders (`WRITE_BYTES`,
    `WRITE_ENTRIES` beyond what was there), watched by a thread while commands run.

    Every `WATCH_SECONDS` (less often when a walk is slow: at most a tenth of a core) the folders
    are measured; past a cap, every running command's process group is killed and `over()`
    says why. Unlike a quota this needs no privilege and works without bubblewrap; the
    overshoot is what was written in one interval."""

    def __init__(self, watched: list[Path], device: int) -> None:
        self.watched = watched
        self.device = device
        self.baseline = disk_usage(watched, 10 * WRITE_ENTRIES)
        self.overflow: str | None = None  # why commands were stopped, once the caps are passed
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None
        self._running: list[Process] = []

    def watch(self, running: list[Process]) -> None:
        """Watch these commands (the list is the sandbox's, updated as it starts more)."""
        self._running = running
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._closing.set()
        if self._thread is not None:
            self._thread.join()

    def _loop(self) -> None:
        tick = 0
        while not self._closing.is_set():
            alive = [r for r in list(self._running) if r.running]
            began = time.monotonic()
            tick += 1  # files deleted while open: every 10th time (reading /proc costs more)
            pids = [r.proc.pid for r in alive] if tick % 10 == 0 else []
            if alive and self.over(pids) is not None:
                for running in alive:
                    running.stopped = self.overflow
                    running.kill()
            self._closing.wait(max(WATCH_SECONDS, 10 * (time.monotonic() - began)))

    def over(self, pids: Sequence[int] = ()) -> str | None:
        """Why the folders are past their caps (measured now; once past, they stay so); files
        `pids` and their children deleted but hold open count too."""
        if self.overflow is None:
            base_bytes, base_entries = self.baseline
            most = base_entries + WRITE_ENTRIES
            size, entries = disk_usage(self.watched, most)
            if pids and platform.system() == "Linux":
                size += held_deleted(pids, self.device)
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
