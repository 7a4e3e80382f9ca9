"""A cohort's uploads: one folder or one .zip per student (what an LMS's "download all" gives),
and .zip files unpacked safely.

`cohort(folder)` names the students: every folder (but hidden ones and archive debris such as
`__MACOSX`) and every `.zip`; a folder holding nothing but one `.zip` (Moodle's layout) is that
zip. Another archive format, two uploads of one name or no upload at all stop the run with
the reason (`IntakeProblem`): nobody is silently left out.

`unpack(archive, dest)` writes a zip's files into a new folder, refusing (`Refused`, with the
reason) what could harm the grading machine or hide the work: a path that is absolute or
climbs out (`../`), more than MAX_FILES entries, more than MAX_BYTES once unpacked (counted
while writing, whatever the zip's headers claim), paths deeper than MAX_DEPTH, encrypted
entries, a name given twice. Links and special files are never created (left out, and said);
tools' folders (`.venv`, `__pycache__`, `.git`, ...) are left out. A zip whose only content is
another zip is unpacked in turn, up to MAX_NESTING archives deep.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO

from grader.uploads import IGNORED

MAX_FILES = 5_000
MAX_BYTES = 512 * 1024**2  # unpacked, all files together
MAX_DEPTH = 16  # folders in one path
MAX_NESTING = 2  # a zip inside the student's zip, not deeper
CHUNK = 1024**2
# What an LMS may hand over that the grader does not unpack: the instructor does it by hand.
OTHER_ARCHIVES = (".tar", ".tar.gz", ".tgz", ".gz", ".bz2", ".xz", ".rar", ".7z")


class Refused(Exception):
    """The zip was not unpacked; the message says why (for the student and the instructor)."""


class IntakeProblem(Exception):
    """The cohort's folder cannot be graded as it is; the message says why and what to do."""


@dataclass(frozen=True)
class Student:
    name: str
    path: Path  # the student's folder, or their .zip
    archive: bool = False  # path is a zip: `prepare` unpacks it


@dataclass
class Cohort:
    students: list[Student]
    ignored: list[str] = field(default_factory=list)  # files of the folder that are no upload


def _archive_of(folder: Path) -> Path | None:
    """The zip a student's folder holds and nothing else besides (Moodle's layout), or None."""
    try:
        entries = [e for e in os.scandir(folder) if not e.name.startswith(".")]
    except OSError:
        return None
    entries = [e for e in entries if e.name not in IGNORED]
    one = entries[0] if len(entries) == 1 else None
    if one is not None and one.is_file(follow_symlinks=False) and one.name.lower().endswith(".zip"):
        return Path(one.path)
    return None


def cohort(folder: Path) -> Cohort:
    """The students of a cohort's folder, by name; `IntakeProblem` if it cannot be graded."""
    students: dict[str, Student] = {}
    problems, ignored, archives = [], [], []
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        name, path = entry.name, Path(entry.path)
        if name.startswith(".") or name in IGNORED:
            continue
        if entry.is_dir(follow_symlinks=False):
            zipped = _archive_of(path)
            student = Student(name, zipped, True) if zipped else Student(name, path)
        elif entry.is_file(follow_symlinks=False) and name.lower().endswith(".zip"):
            student = Student(name[: -len(".zip")], path, True)
        elif name.lower().endswith(OTHER_ARCHIVES):
            archives.append(name)
            continue
        else:
            ignored.append(name)
            continue
        if student.name in students:
            problems.append(
                f"two uploads for {student.name!r} ({students[student.name].path.name} and "
                f"{name}): keep one"
            )
        students[student.name] = student
    if archives:
        problems.append(
            f"{', '.join(archives[:5])}: only .zip files are unpacked; unpack these into a "
            "folder each (named after the student), then run again"
        )
    if not students and not problems:
        problems.append(
            f"{folder} holds no student upload (a folder or a .zip per student)"
            + (f"; its files {', '.join(ignored[:5])} are not uploads" if ignored else "")
        )
    if problems:
        raise IntakeProblem("; ".join(problems))
    return Cohort(list(students.values()), ignored)


def prepare(student: Student, unpacked: Path) -> tuple[Path, list[str]]:
    """The folder to grade for `student` and notes about it: their folder, or their zip
    unpacked (afresh) into `unpacked`/name. Raises `Refused`."""
    if not student.archive:
        return student.path, []
    dest = unpacked / student.name
    shutil.rmtree(dest, ignore_errors=True)
    dest.parent.mkdir(parents=True, exist_ok=True)
    notes = unpack(student.path, dest)
    return dest, notes


# -- one zip ----------------------------------------------------------------------------------
def _parts(name: str) -> tuple[str, ...]:
    """The path of an entry, checked: never absolute, never climbing out."""
    name = name.replace("\\", "/")
    if name.startswith("/") or re.match(r"[A-Za-z]:", name):
        raise Refused(f"it holds an absolute path ({name!r})")
    parts = tuple(p for p in PurePosixPath(name).parts if p not in ("", "."))
    if ".." in parts:
        raise Refused(f"it holds a path that leads out of its folder ({name!r})")
    if len(parts) > MAX_DEPTH:
        raise Refused(f"it holds a path more than {MAX_DEPTH} folders deep ({name[:80]!r})")
    return parts


def _copy(source: IO[bytes], target: Path, budget: int) -> int:
    """Write `source` to the new file `target` (never through a link); the bytes written.
    Raises `Refused` past `budget` bytes."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    written = 0
    with os.fdopen(os.open(target, flags, 0o644), "wb") as out:
        while chunk := source.read(CHUNK):
            written += len(chunk)
            if written > budget:
                raise Refused(f"it unpacks to more than {MAX_BYTES // 1024**2} MB (a zip bomb?)")
            out.write(chunk)
    return written


def _extract(archive: zipfile.ZipFile, dest: Path) -> list[str]:
    entries = archive.infolist()
    if len(entries) > MAX_FILES:
        raise Refused(f"it holds {len(entries)} entries (at most {MAX_FILES})")
    seen: set[tuple[str, ...]] = set()
    left_out: list[str] = []
    total = 0
    for info in entries:
        parts = _parts(info.filename)
        if not parts or any(p in IGNORED for p in parts):
            continue
        if info.flag_bits & 0x1:
            raise Refused(f"{info.filename} is encrypted")
        if parts in seen and not info.is_dir():
            raise Refused(f"it holds {info.filename} twice")
        seen.add(parts)
        kind = stat.S_IFMT(info.external_attr >> 16)  # 0: no type given (a plain file)
        if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
            left_out.append(info.filename)  # a link, a device, a pipe: never made
            continue
        try:
            total += _write(archive, info, dest.joinpath(*parts), dest, MAX_BYTES - total)
        except FileExistsError:
            raise Refused(f"it holds {info.filename} twice") from None
        except OSError as e:
            raise Refused(f"{info.filename} cannot be unpacked ({e.strerror})") from None
        except (zipfile.BadZipFile, NotImplementedError, EOFError) as e:
            raise Refused(f"{info.filename} cannot be read ({e})") from None
    if not left_out:
        return []
    return [f"Left out of your zip (links are never unpacked): {', '.join(left_out[:5])}"]


def _write(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, dest: Path, budget: int
) -> int:
    """One entry written to `target` inside `dest`: a folder, or a file (its bytes)."""
    if info.is_dir() or stat.S_ISDIR(info.external_attr >> 16):
        target.mkdir(parents=True, exist_ok=True)
        return 0
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.parent.is_symlink() or not target.parent.resolve().is_relative_to(dest):
        raise Refused(f"{info.filename} would be written outside its folder")
    with archive.open(info) as source:
        return _copy(source, target, budget)


def unpack(archive: Path, dest: Path, nesting: int = 1) -> list[str]:
    """Unpack the zip `archive` into the new folder `dest` (module docstring); notes about
    what was left out. Raises `Refused`; then `dest` does not exist."""
    dest.mkdir(mode=0o755)
    try:
        try:
            with zipfile.ZipFile(archive) as zipped:
                notes = _extract(zipped, dest.resolve())
        except (zipfile.BadZipFile, OSError) as e:
            raise Refused(f"it is not a readable zip ({e})") from None
        inner = _archive_of(dest)
        if inner is not None:
            if nesting >= MAX_NESTING:
                raise Refused(f"it holds zips inside zips more than {MAX_NESTING} deep")
            with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
                inside = Path(tmp) / "inside"
                notes += unpack(inner, inside, nesting + 1)
                shutil.rmtree(dest)
                inside.rename(dest)
            notes.append(f"Unpacked {inner.name} found inside it.")
        return notes
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise
