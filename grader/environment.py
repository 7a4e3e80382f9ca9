"""The environment a submission locked: its uv.lock installed into a virtual environment.

A student's train.py and service run with the packages their uv.lock names (their
scikit-learn, not the grader's), so the pickles the grader grades are the ones the student's
environment writes. The grader installs the lock itself, outside the sandbox and before any
student code runs: `uv sync --frozen --no-install-project --no-build --no-config` from copies
of pyproject.toml, uv.lock and .python-version only, so nothing is built (no sdist, no build
script of the student's runs), no `[tool.uv]` setting of the student's applies, and the
student's folder is not read beyond those three files. The sandbox sees the environment
read-only.

Environments are shared by identical locks (a cohort with one uv.lock installs it once, from
uv's cache, by hard links: well under a second) where the sandbox makes them read-only; without
bubblewrap each run gets its own.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from grader.submission import files

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

PROJECT_FILES = ("pyproject.toml", "uv.lock", ".python-version")
SHARED = Path(tempfile.gettempdir()) / "grader-envs"
SYNC_SECONDS = 600.0
DONE = ".grader-complete"
# uv's words when it cannot reach an index or a Python download: no fault of the lock
NETWORK = re.compile(
    r"dns error|error sending request|failed to (?:download|fetch)|network|offline|"
    r"connection (?:refused|reset)|timed out",
    re.I,
)


@dataclass(frozen=True)
class LockedEnv:
    """The submission's locked environment, or why there is none."""

    python: Path | None  # the environment's interpreter; None: grade with the grader's own
    problem: str = ""  # why the lock could not be installed ("" if it was, or if no lock)
    seconds: float = 0.0
    # the grader's own trouble (e.g. offline with an empty uv cache): graded with its packages
    grader_problem: str = ""

    @property
    def prefix(self) -> Path | None:
        return self.python.parent.parent if self.python is not None else None

    def base_prefix(self) -> Path | None:
        """The real Python installation behind the environment (the sandbox must see it)."""
        if self.python is None:
            return None
        return self.python.resolve().parent.parent


def _project(submission: Path, into: Path) -> str | None:
    """Copy the three project files into `into`; their digest, or None without a lock."""
    digest = hashlib.sha256()
    for name in PROJECT_FILES:
        path = files.submitted(submission, name)
        if path is None:
            if name == ".python-version":
                continue
            return None
        data = files.read_bytes(path, root=submission)
        (into / name).write_bytes(data)
        digest.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
    return digest.hexdigest()[:24]


PYPI = "https://pypi.org/simple"
PYPI_FILES = "https://files.pythonhosted.org/"


def foreign_sources(lock: dict[str, object]) -> list[str]:
    """What the lock would fetch from elsewhere than PyPI (the grader's machine fetches it:
    a lock may not send it to an arbitrary URL, a git repository or a local path)."""
    found = []
    packages = lock.get("package", [])
    for pkg in packages if isinstance(packages, list) else []:
        if not isinstance(pkg, dict):
            continue
        name = str(pkg.get("name", "?"))
        source = pkg.get("source", {})
        if not isinstance(source, dict):
            found.append(name)
            continue
        if source.get("registry") != PYPI and set(source) - {"virtual", "editable"}:
            found.append(f"{name} ({', '.join(f'{k} = {v}' for k, v in source.items())})")
            continue
        for item in [*(pkg.get("wheels") or []), pkg.get("sdist") or {}]:
            url = item.get("url") if isinstance(item, dict) else None
            if url is not None and not str(url).startswith(PYPI_FILES):
                found.append(f"{name} ({url})")
                break
    return found


def _uv_env(uv: str) -> dict[str, str]:
    """The environment of `uv sync`: the grader's Python first on PATH (a pyenv shim that
    fails outside its folder would hide it), nothing of the student's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UV_", "VIRTUAL_ENV"))}
    first = [str(Path(sys._base_executable).parent), str(Path(uv).parent)]  # type: ignore[attr-defined]
    env["PATH"] = os.pathsep.join([*first, env.get("PATH", "")])
    env["UV_NO_PROGRESS"] = "1"
    env["NO_COLOR"] = "1"
    return env


def _sync(uv: str, project: Path, venv: Path) -> subprocess.CompletedProcess[str]:
    env = _uv_env(uv)
    env["UV_PROJECT_ENVIRONMENT"] = str(venv)
    command = [
        uv,
        "sync",
        "--frozen",
        "--no-install-project",
        "--no-build",
        "--all-groups",
        "--no-config",
        "--project",
        str(project),
    ]
    try:
        return subprocess.run(
            command,
            capture_output=True,
            text=True,
            env=env,
            timeout=SYNC_SECONDS,
            check=False,
            cwd=project,
        )
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(command, 1, "", "uv sync did not finish in time")


def install(submission: Path, uv: str | None, shared: bool, scratch: Path | None) -> LockedEnv:
    """Install the submission's uv.lock; `shared`: reuse an environment of the same lock
    (only where the sandbox cannot write to it), else in `scratch` (the run's own)."""
    if uv is None:
        return LockedEnv(None)
    started = time.monotonic()
    project = Path(tempfile.mkdtemp(prefix="grader-project-"))
    try:
        try:
            key = _project(submission, project)
        except files.FileProblem as e:
            return LockedEnv(None, str(e))
        if key is None:  # no lock: stages 1-4 of the homework, lessons 01-04
            return LockedEnv(None)
        try:
            foreign = foreign_sources(files.read_toml(project / "uv.lock"))
        except files.FileProblem as e:
            return LockedEnv(None, str(e))
        if foreign:
            return LockedEnv(
                None,
                "the grader installs packages from PyPI only; your uv.lock "
                f"takes {', '.join(foreign[:3])} from elsewhere",
            )
        if shared:
            SHARED.mkdir(mode=0o755, exist_ok=True)
            venv = SHARED / key
        else:
            assert scratch is not None
            venv = scratch / "locked-env"
        with _locked(venv.with_name(venv.name + ".lock")):
            python = venv / "bin" / "python"
            if not (venv / DONE).is_file():
                shutil.rmtree(venv, ignore_errors=True)
                result = _sync(uv, project, venv)
                if result.returncode != 0 or not python.is_file():
                    shutil.rmtree(venv, ignore_errors=True)
                    output = result.stdout + result.stderr
                    lines = [line for line in output.splitlines() if line.strip()]
                    tail = "\n".join(lines[-8:])
                    if NETWORK.search(output):  # the grader's machine, not the lock
                        return LockedEnv(None, "", time.monotonic() - started, tail)
                    return LockedEnv(
                        None,
                        f"`uv sync --frozen --no-build` could not install your uv.lock:\n{tail}",
                        time.monotonic() - started,
                    )
                for root, dirs, _ in os.walk(venv):  # readable by the sandbox's uid
                    for d in dirs:
                        with contextlib.suppress(OSError):
                            os.chmod(Path(root) / d, 0o755)
                os.chmod(venv, 0o755)
                (venv / DONE).touch()
        return LockedEnv(python, "", time.monotonic() - started)
    finally:
        shutil.rmtree(project, ignore_errors=True)


@contextlib.contextmanager
def _locked(path: Path):  # type: ignore[no-untyped-def]
    """An exclusive lock on `path` (one installer per environment at a time)."""
    if fcntl is None:
        yield
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def missing_module(output: str) -> str | None:
    """The module a run could not import (`ModuleNotFoundError: No module named 'x'`)."""
    marker = "No module named "
    for line in reversed(output.splitlines()):
        if marker in line:
            name = line.split(marker, 1)[1].strip().strip("'\"").split(".")[0]
            return name if name.isidentifier() else None
    return None


# -- interpreters -------------------------------------------------------------------------------
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
