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
import dataclasses
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

from grader.environment import trust
from grader.sandbox import owned
from grader.submission import files

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

PROJECT_FILES = ("pyproject.toml", "uv.lock", ".python-version")
SYNC_SECONDS = 600.0
MAX_DOWNLOAD = 2 * 1024**3  # what one lock may make the grader download (its wheels, at most)
ENVS_KEEP = 8  # shared environments kept (the most recently used), ~300 MB each for the course
IN_USE_SECONDS = 3600.0  # an environment used more recently than this is never pruned
DONE = ".grader-complete"
FORMAT = 3  # environments of another format (an older grader's) are never reused
# uv's words when it cannot reach an index or a Python download: no fault of the lock
NETWORK = re.compile(
    r"dns error|error sending request|failed to (?:download|fetch)|network|offline|"
    r"connection (?:refused|reset)|timed out",
    re.I,
)


def shared_root() -> Path:
    """Where environments shared by identical locks live (the grader's own folder)."""
    return Path(tempfile.gettempdir()) / "grader-envs"


@dataclass(frozen=True)
class LockedEnv:
    """The submission's locked environment, or why there is none."""

    python: Path | None  # the environment's interpreter; None: grade with the grader's own
    problem: str = ""  # why the lock could not be installed ("" if it was, or if no lock)
    seconds: float = 0.0
    # the grader's own trouble (e.g. offline with an empty uv cache): graded with its packages
    grader_problem: str = ""
    trusted: trust.Trusted | None = None  # what the probe may import from it
    lock_fd: int | None = None  # held (shared) while the grading uses the environment

    def close(self) -> None:
        """Let go of the environment (a later prune may delete it)."""
        if self.lock_fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.lock_fd)

    def probe_trust(self) -> trust.Trusted:
        """The site-packages the probe imports from, and the modules it may import there."""
        if self.python is not None and self.trusted is not None:
            return self.trusted
        return trust.of_grader()

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
    digest = hashlib.sha256(f"grader-env-{FORMAT}\0".encode())
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
    """What the lock would fetch from elsewhere than PyPI (the grader's machine fetches it: a
    lock may not send it to an arbitrary URL, a git repository or a local path). The project
    itself (`virtual = "."` or `editable = "."`) is not installed and is fine."""
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
        the_project = set(source) <= {"virtual", "editable"} and all(
            v == "." for v in source.values()
        )
        if source.get("registry") != PYPI and not (source and the_project):
            found.append(f"{name} ({', '.join(f'{k} = {v}' for k, v in source.items())})")
            continue
        for item in [*(pkg.get("wheels") or []), pkg.get("sdist") or {}]:
            url = item.get("url") if isinstance(item, dict) else None
            if url is not None and not str(url).startswith(PYPI_FILES):
                found.append(f"{name} ({url})")
                break
    return found


def download_bytes(lock: dict[str, object]) -> int:
    """An upper bound of what installing the lock downloads: per package, its largest wheel
    (or its sdist) as the lock states it."""
    total = 0
    packages = lock.get("package", [])
    for pkg in packages if isinstance(packages, list) else []:
        if not isinstance(pkg, dict):
            continue
        items = [*(pkg.get("wheels") or []), pkg.get("sdist") or {}]
        sizes = [i.get("size") for i in items if isinstance(i, dict)]
        total += max((s for s in sizes if isinstance(s, int)), default=0)
    return total


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
            lock = files.read_toml(project / "uv.lock") if key is not None else {}
        except files.FileProblem as e:
            return LockedEnv(None, str(e))
        if key is None:  # no lock: stages 1-4 of the homework, lessons 01-04
            return LockedEnv(None)
        refused = _refused(lock)
        if refused:
            return LockedEnv(None, refused)
        if shared:
            venv = owned.own_dir(shared_root()) / key
        else:
            assert scratch is not None
            venv = scratch / "locked-env"
        fd = owned.open_lock(venv.with_name(venv.name + ".lock"))
        try:
            env = _installed(uv, project, venv, fd)
        except BaseException:
            os.close(fd)
            raise
        if env.python is None:
            os.close(fd)
        if shared:
            prune()
        return dataclasses.replace(env, seconds=time.monotonic() - started)
    finally:
        shutil.rmtree(project, ignore_errors=True)


def _refused(lock: dict[str, object]) -> str:
    """Why the grader will not install this lock ("" if it will)."""
    foreign = foreign_sources(lock)
    if foreign:
        return (
            "the grader installs packages from PyPI only; your uv.lock "
            f"takes {', '.join(foreign[:3])} from elsewhere"
        )
    size = download_bytes(lock)
    if size > MAX_DOWNLOAD:
        return (
            f"your uv.lock would download about {size / 2**30:.1f} GiB (the grader installs up "
            f"to {MAX_DOWNLOAD / 2**30:.1f} GiB): lock only what train.py and the service "
            "import (`uv remove` the rest)"
        )
    return ""


def _installed(uv: str, project: Path, venv: Path, fd: int) -> LockedEnv:
    """The environment at `venv`, installed now if it is not there yet; `fd` (its lock) is
    held exclusively while installing, then shared while the grading uses it."""
    assert fcntl is not None
    fcntl.flock(fd, fcntl.LOCK_EX)
    python = venv / "bin" / "python"
    if not (owned.check_dir(venv) and (venv / DONE).is_file()):
        shutil.rmtree(venv, ignore_errors=True)
        problem = _fill(uv, project, venv)
        if problem is not None:
            shutil.rmtree(venv, ignore_errors=True)
            return problem
    fcntl.flock(fd, fcntl.LOCK_SH)  # in use: a prune leaves it alone
    os.utime(fd)  # recently used: a prune keeps it
    verdict = trust.of_environment(venv)
    if verdict is None or verdict.problems:
        why = "; ".join(verdict.problems[:3]) if verdict else "it was not verified"
        return LockedEnv(
            None,
            f"the grader does not load models in the environment your uv.lock installs: {why}."
            " Lock packages from PyPI that leave scikit-learn's and FastAPI's files alone",
        )
    return LockedEnv(python, trusted=verdict, lock_fd=fd)


def _fill(uv: str, project: Path, venv: Path) -> LockedEnv | None:
    """`uv sync` into `venv`, verify what the probe may import, mark it done (None: done)."""
    result = _sync(uv, project, venv)
    if result.returncode != 0 or not (venv / "bin" / "python").is_file():
        output = result.stdout + result.stderr
        lines = [line for line in output.splitlines() if line.strip()]
        tail = "\n".join(lines[-8:])
        if NETWORK.search(output):  # the grader's machine, not the lock
            return LockedEnv(None, "", 0.0, tail)
        return LockedEnv(
            None, f"`uv sync --frozen --no-build` could not install your uv.lock:\n{tail}"
        )
    site = trust.site_packages(venv)
    verdict = trust.verify(site) if site is not None else trust.Trusted(venv, (), ("no site",))
    if site is not None:
        _compile(venv / "bin" / "python", site)
    owned.chmod_tree(venv)  # readable by the sandbox's uid
    (venv / trust.RECORD_FILE).write_text(verdict.to_json())
    (venv / DONE).touch()
    return None


def _compile(python: Path, site: Path) -> None:
    """Bytecode for the environment, once (after it was verified): the sandbox sees it
    read-only and writes none, so without it every sandboxed Python would compile
    scikit-learn and pandas again (52-60 s instead of 10-12 s under load, measured). The
    standard library's compileall, with site processing off: it runs nothing it compiles."""
    command = [str(python), "-I", "-S", "-m", "compileall", "-q", "-j", "0", str(site)]
    with contextlib.suppress(OSError, subprocess.TimeoutExpired):
        subprocess.run(command, capture_output=True, timeout=SYNC_SECONDS, check=False)


def prune(keep: int = ENVS_KEEP) -> None:
    """Delete all but the `keep` most recently used shared environments (those in use, whose
    lock another grading holds, are left alone)."""
    root = shared_root()
    if not owned.check_dir(root):
        return
    assert fcntl is not None
    locks = sorted(root.glob("*.lock"), key=_mtime, reverse=True)
    for path in locks[keep:]:
        if time.time() - _mtime(path) < IN_USE_SECONDS:  # maybe in use by an older grader
            continue
        try:
            fd = owned.open_lock(path)
        except (OSError, owned.NotOurs):
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        try:
            shutil.rmtree(path.with_suffix(""), ignore_errors=True)
            path.unlink(missing_ok=True)
        finally:
            os.close(fd)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def missing_module(output: str) -> str | None:
    """The module a run could not import (`ModuleNotFoundError: No module named 'x'`)."""
    marker = "No module named "
    for line in reversed(output.splitlines()):
        if marker in line:
            name = line.split(marker, 1)[1].strip().strip("'\"").split(".")[0]
            return name if name.isidentifier() else None
    return None
