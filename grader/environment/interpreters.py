"""The uv binary, and the interpreters uv runs with in the sandbox."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path


def real_uv() -> str | None:
    """The uv binary itself (not a pyenv/asdf shim, which needs the caller's home)."""
    path = shutil.which("uv")
    if path is None:
        return None
    if "/shims/" in path:
        pyenv = shutil.which("pyenv")
        if pyenv:
            out = subprocess.run(
                [pyenv, "which", "uv"], capture_output=True, text=True, check=False
            )
            if out.returncode == 0 and out.stdout.strip():
                return out.stdout.strip()
    return str(Path(path).resolve())


def uv_interpreter(uv: str | None, request: str | None = None) -> tuple[str, Path] | None:
    """(executable, installation) of an interpreter for uv in the sandbox (`UV_PYTHON`): uv's
    own Pythons and pyenv's live under the real `$HOME`, which the sandbox hides, and uv skips
    virtual environments' interpreters (a uv installed with pip into a venv found no other).
    The installation must be visible in the sandbox (read-only).

    `request` is the submission's `.python-version` ("3.13"); the grader's own base
    interpreter serves when it matches, else the one `uv python find` names."""
    mine = f"{sys.version_info.major}.{sys.version_info.minor}"
    wanted = (request or mine).strip()
    if not re.fullmatch(r"\d+\.\d+(\.\d+)?", wanted):
        wanted = mine
    if wanted.startswith(mine) and not wanted.startswith(mine + "0"):
        base = getattr(sys, "_base_executable", sys.executable)
        return str(Path(base).resolve()), Path(sys.base_prefix)
    return _find_interpreter(uv, wanted)


def _find_interpreter(uv: str | None, version: str) -> tuple[str, Path] | None:
    """(base executable, base prefix) of the interpreter `uv python find` names."""
    if uv is None:
        return None
    try:
        found = subprocess.run(
            [uv, "python", "find", version],
            capture_output=True,
            text=True,
            timeout=30,
            cwd="/",
            check=False,
        )
        path = found.stdout.strip()
        if found.returncode != 0 or not path:
            return None
        code = "import sys; print(sys._base_executable); print(sys.base_prefix)"
        info = subprocess.run(
            [path, "-I", "-c", code],
            capture_output=True,
            text=True,
            timeout=30,
            cwd="/",
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = info.stdout.split("\n")
    if info.returncode != 0 or len(lines) < 2:
        return None
    return str(Path(lines[0]).resolve()), Path(lines[1])
