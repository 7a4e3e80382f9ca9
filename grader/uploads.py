"""Where the submission is inside what a student uploaded.

Students upload their files, or a zip that holds one folder (`credit-card-hw/`, often beside
macOS's `__MACOSX/`). The CLI, hence Gradescope's entry, GitHub Classroom and `grade batch`,
grades the folder this one rule finds, and says so when it is not the upload itself.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

MARKER = "train.py"  # every stage starts from it
MAX_DEPTH = 3
# Folders that are never the submission: archive debris, tools' caches, version control.
IGNORED = frozenset({"__MACOSX", "__pycache__", "node_modules", ".git", ".venv"})


@dataclass(frozen=True)
class Located:
    root: Path  # the folder to grade
    relative: str  # the same, relative to the upload ("." for the upload itself)
    notes: list[str] = field(default_factory=list)


def _folders(path: Path) -> list[Path]:
    """The sub-folders worth looking into, by name (symlinks are never followed)."""
    try:
        entries = list(os.scandir(path))
    except OSError:
        return []
    return sorted(
        Path(e.path)
        for e in entries
        if e.is_dir(follow_symlinks=False)
        and not e.name.startswith((".", "_"))
        and e.name not in IGNORED
    )


def _visible_files(path: Path) -> list[str]:
    try:
        return [
            e.name
            for e in os.scandir(path)
            if not e.name.startswith(".") and not e.is_dir(follow_symlinks=False)
        ]
    except OSError:
        return []


def locate(upload: Path) -> Located:
    """The shallowest folder (at most 3 levels down) with a train.py, the first by name if
    several; else the only folder of an upload that holds nothing else; else the upload."""
    if (upload / MARKER).is_file():
        return Located(upload, ".")
    level = [upload]
    for _ in range(MAX_DEPTH):
        level = [sub for folder in level for sub in _folders(folder)]
        found = [folder for folder in level if (folder / MARKER).is_file()]
        if found:
            root = found[0]
            relative = root.relative_to(upload).as_posix()
            notes = [f"Graded the folder {relative}/ of your upload (the first with a {MARKER})."]
            if len(found) > 1:
                others = ", ".join(f"{f.relative_to(upload).as_posix()}/" for f in found[1:])
                notes.append(f"Other folders with a {MARKER} were not graded: {others}")
            return Located(root, relative, notes)
    root = upload
    while not _visible_files(root) and len(_folders(root)) == 1:
        root = _folders(root)[0]
    if root == upload:
        return Located(upload, ".")
    relative = root.relative_to(upload).as_posix()
    return Located(root, relative, [f"Graded the folder {relative}/ of your upload."])
