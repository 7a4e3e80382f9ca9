"""Folders and lock files the grader reuses across runs (shared environments, uid locks,
container runs): created atomically and used only while they are the grader's own.

A folder someone else created first (another local user, say, who plants
`/tmp/grader-envs/<key>/bin/python`) must never be used: every use checks, without following
a symlink, that the path is a real folder (or file) owned by the grader's uid and not writable
by its group or others. Anything else is refused with one line saying why and what to do."""

from __future__ import annotations

import os
import stat
from pathlib import Path


class NotOurs(RuntimeError):
    """A shared path the grader will not use; the message says why and how to fix it."""


def _problem(path: Path, info: os.stat_result, want_dir: bool) -> str:
    kind = "folder" if want_dir else "file"
    if stat.S_ISLNK(info.st_mode):
        return f"{path} is a symlink, not the grader's {kind}"
    if want_dir and not stat.S_ISDIR(info.st_mode):
        return f"{path} is not a folder"
    if not want_dir and not stat.S_ISREG(info.st_mode):
        return f"{path} is not a regular file"
    if info.st_uid != os.geteuid():
        return f"{path} belongs to uid {info.st_uid}, not to the grader (uid {os.geteuid()})"
    if info.st_mode & 0o022:
        return f"{path} is writable by other users (mode {oct(info.st_mode & 0o777)})"
    return ""


def refuse(path: Path, problem: str) -> NotOurs:
    return NotOurs(
        f"the grader will not use {path}: {problem}. Remove it (`rm -rf {path}`) if you do not "
        "know who made it, or point TMPDIR at a folder of your own"
    )


def own_dir(path: Path, mode: int = 0o755) -> Path:
    """`path` as a folder of the grader's: made (atomically) if missing, checked on every use."""
    try:
        os.mkdir(path, mode)
        os.chmod(path, mode)  # whatever the umask
    except FileExistsError:
        pass
    info = os.lstat(path)
    problem = _problem(path, info, want_dir=True)
    if problem:
        raise refuse(path, problem)
    return path


def check_dir(path: Path) -> bool:
    """Is `path` an existing folder of the grader's? (False if missing; raises if not ours.)"""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return False
    problem = _problem(path, info, want_dir=True)
    if problem:
        raise refuse(path, problem)
    return True


def open_lock(path: Path) -> int:
    """A lock file of the grader's (made if missing), opened without following a symlink."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    problem = _problem(path, os.fstat(fd), want_dir=False)
    if problem:
        os.close(fd)
        raise refuse(path, problem)
    return fd


def chmod_tree(root: Path, folders: int = 0o755) -> None:
    """Make the folders under `root` (and `root`) readable; never through a symlink."""
    for top, dirs, _ in os.walk(root):
        for name in dirs:
            path = Path(top) / name
            if not path.is_symlink():
                _chmod_dir(path, folders)
    _chmod_dir(root, folders)


def _chmod_dir(path: Path, mode: int) -> None:
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(path, flags)
    except OSError:
        return
    try:
        os.fchmod(fd, mode)
    finally:
        os.close(fd)
