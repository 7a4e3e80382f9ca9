"""Read the scikit-learn version recorded in a pickle without unpickling it.

scikit-learn estimators add `_sklearn_version` to their pickled state. `pickletools` walks the
pickle's opcodes as data (nothing is imported or executed), so the grader process can read that
string from a student's file safely.
"""

from __future__ import annotations

import pickletools
from pathlib import Path

from grader.submission import files

MAX_BYTES = 500 * 1024 * 1024
STRING_OPS = {
    "SHORT_BINUNICODE",
    "BINUNICODE",
    "BINUNICODE8",
    "UNICODE",
    "STRING",
    "BINSTRING",
    "SHORT_BINSTRING",
}
PUT_OPS = {"PUT", "BINPUT", "LONG_BINPUT"}
GET_OPS = {"GET", "BINGET", "LONG_BINGET"}


def sklearn_versions(path: Path) -> set[str]:
    """The distinct `_sklearn_version` values in the pickle at `path` (empty if none)."""
    data = files.read_bytes(path, MAX_BYTES)  # a regular file in its folder, never a link out
    memo: dict[int, object] = {}
    last: object = None
    versions: set[str] = set()
    want_value = False
    try:
        for op, arg, _pos in pickletools.genops(data):
            name = op.name
            if name == "MEMOIZE":
                memo[len(memo)] = last
                continue
            if name in PUT_OPS:
                memo[int(arg)] = last  # type: ignore[arg-type]
                continue
            if name in STRING_OPS:
                value: object = arg
            elif name in GET_OPS:
                value = memo.get(int(arg))  # type: ignore[arg-type]
            else:
                value = None
            if want_value and isinstance(value, str):
                versions.add(value)
            want_value = value == "_sklearn_version"
            last = value
    except ValueError as e:  # not a pickle, or truncated
        raise ValueError(f"{path.name} is not a readable pickle ({e})") from None
    return versions
