"""Bounded readers for the submitted files the grader parses itself.

Every file the grader reads from a submission (uv.lock, pyproject.toml, Dockerfile,
.dockerignore, fly.toml, answers.toml) goes through here: a symlink that leads out of the
submission, something that is not a regular file, a file over its size cap, undecodable or
too deeply nested TOML each raise `FileProblem`, a failed check whose message says what to
change. The file is opened once, without following a final symlink and without blocking on a
FIFO, and read at most up to its cap, so a file swapped while the grader reads it changes
nothing either.
"""

from __future__ import annotations

import os
import stat
import tomllib
from pathlib import Path
from typing import Any

KIB = 1024
MIB = 1024 * KIB

# Caps per file name; a real file of the course is far below each (uv.lock: ~150 kB).
LIMITS = {
    "uv.lock": 5 * MIB,
    "pyproject.toml": 256 * KIB,
    "Dockerfile": 64 * KIB,
    ".dockerignore": 64 * KIB,
    "fly.toml": 64 * KIB,
    "answers.toml": 64 * KIB,
}
DEFAULT_LIMIT = 1 * MIB


class FileProblem(Exception):
    """A submitted file the grader will not read; the message is what the student reads (the
    contracts report it as the failure of the check that read the file)."""


def limit_for(name: str) -> int:
    """The size cap of a submitted file, by its name."""
    return LIMITS.get(Path(name).name, DEFAULT_LIMIT)


def _size(n: int) -> str:
    return f"{n / MIB:.1f} MB" if n >= MIB else f"{n / KIB:.0f} kB"


def _inside(path: str, root: Path) -> bool:
    return Path(path).is_relative_to(root)


def submitted(root: Path, name: str) -> Path | None:
    """`root/name` if it is a regular file of the submission, None if it does not exist.

    A symlink leading out of `root` raises `FileProblem`, naming the link (never the target's
    content); a folder or device where a file is expected does too."""
    path = root / name
    if not os.path.lexists(path):
        return None
    real = path.resolve()
    if not real.is_relative_to(root.resolve()):
        link = os.readlink(path) if path.is_symlink() else str(real)
        raise FileProblem(
            f"{name} is a symlink to a file outside your submission ({link}): commit the real file"
        )
    if not real.exists():
        return None
    if not real.is_file():
        raise FileProblem(f"{name} is not a regular file: commit it as a plain file")
    return path


def read_bytes(path: Path, limit_bytes: int | None = None, root: Path | None = None) -> bytes:
    """At most `limit_bytes` of `path`, which must be a regular file inside `root` (default:
    its folder); anything else raises `FileProblem`."""
    name = path.name
    limit = limit_for(name) if limit_bytes is None else limit_bytes
    base = (root or path.parent).resolve()
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    real = path.resolve()
    if not real.is_relative_to(base):
        raise FileProblem(
            f"{name} is a symlink to a file outside your submission: commit the real file"
        )
    try:
        fd = os.open(real, flags)
    except FileNotFoundError:
        raise FileProblem(f"{name} is missing") from None
    except OSError as e:  # ELOOP: the file became a symlink meanwhile
        raise FileProblem(
            f"{name} could not be read ({e.strerror}): commit it as a plain file"
        ) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise FileProblem(f"{name} is not a regular file: commit it as a plain file")
        proc = Path(f"/proc/self/fd/{fd}")
        if proc.exists() and not _inside(os.readlink(proc), base):  # swapped on the way
            raise FileProblem(f"{name} leads outside your submission: commit the real file")
        if info.st_size > limit:
            raise FileProblem(_too_big(name, info.st_size, limit))
        chunks = []
        total = 0
        while total <= limit and (chunk := os.read(fd, min(1 << 20, limit + 1 - total))):
            chunks.append(chunk)
            total += len(chunk)
        if total > limit:  # it grew while being read
            raise FileProblem(_too_big(name, total, limit))
        return b"".join(chunks)
    finally:
        os.close(fd)


def _too_big(name: str, size: int, limit: int) -> str:
    return (
        f"{name} is {_size(size)}; the grader reads files of up to {_size(limit)}: "
        f"submit the {name} your tools write, not generated or padded content"
    )


def read_text(path: Path, limit_bytes: int | None = None, root: Path | None = None) -> str:
    """`path` as text (UTF-8, undecodable bytes replaced), bounded as `read_bytes`."""
    return read_bytes(path, limit_bytes, root).decode("utf-8", errors="replace")


def read_toml(
    path: Path, limit_bytes: int | None = None, root: Path | None = None
) -> dict[str, Any]:
    """`path` parsed as TOML, bounded as `read_bytes`; invalid or too deeply nested TOML
    raises `FileProblem`."""
    data = read_bytes(path, limit_bytes, root)
    try:
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise FileProblem(f"{path.name} is not UTF-8 text: {e}") from None
    except tomllib.TOMLDecodeError as e:
        raise FileProblem(f"{path.name} is not valid TOML: {e}") from None
    except RecursionError:
        raise FileProblem(
            f"{path.name} nests arrays or tables too deeply for the grader to read: "
            "write it as your tools do (a few levels at most)"
        ) from None
