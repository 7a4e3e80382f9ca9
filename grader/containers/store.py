"""The dependency stores: the layers of a Dockerfile's dependency steps, built once per key and
read-only to later builds; and the sweep of what dead runs left under `RUNS`."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from grader.containers.engine import RUNS, Engine
from grader.sandbox import owned
from grader.submission import dockerpolicy, files

DEPS_KEEP = 6  # dependency stores kept (the most recently used), each ~300 MB for the course


def deps_key(context: Path, steps: dockerpolicy.DependencySteps, engine: Engine) -> str | None:
    """sha256 of everything the dependency steps' result depends on: their text, the bytes and
    modes of the files they read, `.dockerignore`, the engine and the base images it holds.
    None if one of those files is not a plain file (the build then shares nothing)."""
    digest = hashlib.sha256(f"grader-deps-1\0{engine.version}\0{engine.driver}\0".encode())
    digest.update(steps.text.encode() + b"\0")
    images = Path(engine.store) / f"{engine.driver}-images" / "images.json"
    with contextlib.suppress(OSError):
        digest.update(hashlib.sha256(images.read_bytes()).digest())
    for name in (*steps.files, ".dockerignore"):
        path = context / name
        if name == ".dockerignore" and not os.path.lexists(path):
            digest.update(b"no .dockerignore\0")
            continue
        if path.is_symlink() or not path.is_file() or path.stat().st_size > files.limit_for(name):
            return None
        digest.update(f"{name}\0{path.stat().st_mode:o}\0".encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def read_dockerfile(context: Path) -> str | None:
    """`context`'s Dockerfile, read through the bounded readers (None: none, or unreadable)."""
    try:
        path = files.submitted(context, "Dockerfile")
        if path is None:
            return None
        return files.read_bytes(path, root=context).decode(errors="replace")
    except (OSError, files.FileProblem):
        return None


@dataclass
class Claim:
    """A dependency store this run reads (shared lock) or fills (exclusive lock)."""

    path: Path
    key: str
    fd: int
    filling: bool  # this run builds it (then marks it done)

    @property
    def image(self) -> str:
        return f"localhost/grader-{self.path.name}"

    def filled(self) -> None:
        """Freeze the store (its build exited 0) and mark it done: later builds read it. Its
        folder goes back to the grader (the build user may enter it, not change its entries),
        and every build that reads it sees it through a read-only bind (engine.wrap)."""
        if self.filling:
            os.chown(self.path, os.geteuid(), os.getegid())
            os.chmod(self.path, 0o755)
            self.path.with_suffix(".done").touch()
            self.filling = False

    def release(self) -> None:
        """Let go of the store; one filled only in part is removed."""
        if self.filling:
            remove(self.path)
            self.filling = False
        os.close(self.fd)


def claim(source: Path, into: Path, engine: Engine) -> Claim | None:
    """Find (or claim, to fill it) the store of the dependency steps of `source`'s Dockerfile;
    None when the steps cannot be shared or their store is busy. The files the steps read are
    copied into `into` (what is hashed is what is built), through the bounded readers."""
    if engine.name != "podman":
        return None
    text = read_dockerfile(source)
    steps = dockerpolicy.dependency_steps(text) if text is not None else None
    if steps is None:
        return None
    try:
        for name in (*steps.files, ".dockerignore"):
            path = files.submitted(source, name)
            if path is not None:
                (into / name).write_bytes(files.read_bytes(path, root=source))
                (into / name).chmod(path.lstat().st_mode & 0o777)  # COPY keeps the mode
    except (OSError, files.FileProblem):
        return None
    key = deps_key(into, steps, engine)
    if key is None:
        return None
    store = RUNS / f"deps-{key[:20]}"
    done = store.with_suffix(".done")
    if done.exists() and frozen(store):
        fd = flock(store, shared=True)
        if fd is not None and done.exists():
            with contextlib.suppress(OSError):
                os.utime(store.with_suffix(".lock"))
            return Claim(store, key, fd, filling=False)
        if fd is not None:
            os.close(fd)
        return None
    fd = flock(store, shared=False)
    if fd is None:  # another run fills it right now: build without it
        return None
    if done.exists() and frozen(store):  # filled meanwhile: read it
        fcntl.flock(fd, fcntl.LOCK_SH)
        return Claim(store, key, fd, filling=False)
    remove(store)  # a fill that did not finish, or a store not frozen: filled again
    if store.exists():  # could not be deleted: build without a store
        os.close(fd)
        return None
    store.mkdir(mode=0o700)
    (into.parent / "deps.Dockerfile").write_text(steps.text)
    return Claim(store, key, fd, filling=True)


def frozen(store: Path) -> bool:
    """Is `store` a filled store as `Claim.filled` left it (the grader's, read-only to others)?
    Anything else under RUNS (which only the grader can write) is refilled."""
    try:
        return owned.check_dir(store)
    except owned.NotOurs:
        return False


def flock(folder: Path, shared: bool) -> int | None:
    """The folder's lock (shared or exclusive) if free, on the lock file still in place (not
    one a sweep has just unlinked); None if another process holds it."""
    try:
        fd = owned.open_lock(folder.with_suffix(".lock"))
    except OSError:
        return None
    try:
        fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        if os.fstat(fd).st_ino == os.stat(folder.with_suffix(".lock")).st_ino:
            return fd
    except OSError:
        pass
    os.close(fd)
    return None


def lock(folder: Path) -> int:
    fd = flock(folder, shared=False)
    if fd is None:
        raise OSError(f"{folder} is in use")
    return fd


def remove(folder: Path) -> None:
    """Delete a run's or a store's folder and its marks (the lock file stays with its holder).
    A grader that is not root cannot delete the files of its sub-uids itself: podman can."""
    shutil.rmtree(folder, ignore_errors=True)
    podman = shutil.which("podman")
    if folder.exists() and os.geteuid() != 0 and podman is not None:
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            subprocess.run(
                [podman, "unshare", "rm", "-rf", str(folder)],
                capture_output=True,
                timeout=300,
                check=False,
            )
    folder.with_suffix(".done").unlink(missing_ok=True)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def sweep() -> None:
    """Delete the folders of runs whose grader is gone (its lock is free), dependency stores
    left half-filled, and all but the `DEPS_KEEP` most recently used ones."""
    if not owned.check_dir(RUNS):
        return
    stores = sorted(RUNS.glob("deps-*.lock"), key=_mtime, reverse=True)
    done = [lock for lock in stores if lock.with_suffix(".done").exists()]
    stale = [lock for lock in stores if lock not in done[:DEPS_KEEP]]
    for lock_file in [*RUNS.glob("run-*.lock"), *stale]:
        fd = flock(lock_file.with_suffix(""), shared=False)
        if fd is None:  # in use, or swept by another grader meanwhile
            continue
        try:
            forget_docker_run(lock_file.with_suffix(""))
            remove(lock_file.with_suffix(""))
            lock_file.unlink(missing_ok=True)
        finally:
            os.close(fd)


DOCKER_RUN_FILE = "docker-run"  # in a docker run's folder: its id, for a later sweep


def forget_docker_run(folder: Path) -> None:
    """A docker run outlives its grader in the daemon: remove its container and image."""
    docker = shutil.which("docker")
    try:
        run_id = (folder / DOCKER_RUN_FILE).read_text().strip()
    except OSError:
        return
    if docker is None or not run_id.isalnum():
        return
    for args in (["rm", "-f", f"grader-{run_id}"], ["rmi", "-f", f"localhost/grader-{run_id}"]):
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            subprocess.run([docker, *args], capture_output=True, timeout=120, check=False)
