"""The container engine: which one answers here, who runs it, what it is known to let through."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pwd
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from grader.sandbox.owned import own_dir

BUILD_USER = os.environ.get("GRADER_BUILD_USER", "grader-build")
# short: podman refuses a runroot path over 50 characters
RUNS = Path(os.environ.get("GRADER_CONTAINER_RUNS", "/var/tmp/grader-ctr"))
HELPERS = RUNS / "bin"  # first on the engine's PATH (see `helpers`)
SLIRP = """#!/bin/sh
# buildah before 1.29 starts slirp4netns for RUN steps without this flag: the build could reach
# the host's loopback services through 10.0.2.2. The flag is harmless when given twice.
exec /usr/bin/slirp4netns --disable-host-loopback "$@"
"""
# ulimits of builds and containers (rootless podman on cgroup v1 ignores --memory/--pids-limit)
NPROC = 4096  # counts every process of the build user: all its runs share it
DATA_BYTES = 4 * 1024**3
FILE_BYTES = 2 * 1024**3

# Known build escapes of buildah (podman), the podman releases that fix each (one per release
# branch that got the fix), and what it allows (docs/reliability.md: the policy blocks the
# Dockerfile features they need).
PODMAN_FIXES = (
    (
        "CVE-2024-1753",
        ((4, 9, 4), (5, 0, 1)),
        "a `from=` bind mount of a symlink mounts the host's /",
    ),
    ("CVE-2024-9407", ((5, 2, 4),), "`bind-propagation` of a mount is not validated"),
    ("CVE-2024-9675", ((5, 2, 5), (5, 3, 0)), "a cache mount `id=../..` mounts any host folder"),
    (
        "CVE-2024-11218",
        ((5, 3, 2),),
        "concurrent builds' `RUN --mount` reach host content; bind mounts write to their source",
    ),
)
DOCKER_FIXED = (25, 0, 2)  # BuildKit 0.12.5: CVE-2024-23651/23652/23653 (cache and mounts)


def fixed(version: tuple[int, ...], fixes: tuple[tuple[int, ...], ...]) -> bool:
    """Is `version` at or past the fix of its own release branch (or of a later branch)?"""
    same_branch = [f for f in fixes if f[:2] == version[:2]]
    if same_branch:
        return version >= same_branch[0]
    return version[:2] > max(fixes)[:2]


def version_tuple(text: str) -> tuple[int, ...]:
    found = re.match(r"\s*v?(\d+)\.(\d+)(?:\.(\d+))?", text)
    return tuple(int(g or 0) for g in found.groups()) if found else ()


@dataclass(frozen=True)
class Engine:
    """A usable container engine and who runs it."""

    name: str  # "podman" or "docker"
    path: str
    version: str
    user: str | None = None  # the unprivileged user podman runs as (grader as root)
    uid: int | None = None
    home: Path | None = None
    warnings: tuple[str, ...] = ()
    driver: str = ""  # podman's storage driver and image store (the base images)
    store: str = ""

    @property
    def rootless(self) -> bool:
        return self.name == "podman" and (self.user is not None or os.geteuid() != 0)

    def describe(self) -> str:
        """What applies to stage 6, in words, for the report."""
        if self.name == "docker":
            return (
                f"docker {self.version} (a daemon: builds run with its rights, no per-student "
                "storage; --no-cache per build)"
            )
        who = (
            f"rootless as the unprivileged user {self.user}"
            if self.user
            else "rootless as the grader's own user"
        )
        return (
            f"podman {self.version} {who}, a storage of its own per submission (shared: only "
            "the uv.lock install steps, between byte-identical ones), own pid namespace, "
            f"ulimits (processes {NPROC}, data {DATA_BYTES // 2**30} GiB, file size "
            f"{FILE_BYTES // 2**30} GiB), no proxy, no host loopback"
        )

    def env(self, tmpdir: Path) -> dict[str, str]:
        """The whole environment of an engine command: nothing of the grader's."""
        path = f"{HELPERS}:/usr/local/bin:/usr/bin:/bin"
        env = {"PATH": path, "LANG": "C.UTF-8", "TMPDIR": str(tmpdir)}
        home = self.home or Path(os.environ.get("HOME", "/"))
        env["HOME"] = str(home)
        env["XDG_RUNTIME_DIR"] = str(tmpdir / "xdg")
        if self.name == "docker":  # BuildKit (RUN --mount); no credentials or proxies of ours
            env["DOCKER_BUILDKIT"] = "1"
            env["DOCKER_CONFIG"] = str(tmpdir / "docker-config")
            if os.environ.get("DOCKER_HOST"):
                env["DOCKER_HOST"] = os.environ["DOCKER_HOST"]
        return env

    def wrap(self, argv: list[str], read_only: Sequence[Path] = ()) -> list[str]:
        """`argv` as the build user (runuser), when there is one, in a pid namespace of its
        own (rootless podman's pause process and conmon die with it) and a mount namespace
        of its own, where the `read_only` folders (the image stores later builds read) are
        bound read-only: the kernel refuses every write to them from this run, whatever
        escapes a build, and a user namespace cannot lift that."""
        if self.user is None:
            return argv
        runuser = shutil.which("runuser", path="/usr/sbin:/sbin:/usr/bin:/bin") or "runuser"
        unshare = shutil.which("unshare", path="/usr/bin:/bin:/usr/sbin") or "unshare"
        mount = shutil.which("mount", path="/usr/bin:/bin:/usr/sbin:/sbin") or "mount"
        inner = [runuser, "-u", self.user, "--", *argv]
        binds = [str(p) for p in read_only if p.is_dir()]
        if binds:  # sh: bind each folder read-only, then become the build user
            script = (
                'for d in "$@"; do [ "$d" = -- ] && break; '
                + mount
                + ' --bind -o ro "$d" "$d" || exit 97; shift; done; shift; exec "$@"'
            )
            inner = ["sh", "-c", script, "sh", *binds, "--", *inner]
        return [unshare, "--pid", "--fork", "--kill-child", "--mount-proc", *inner]


def run_quiet(
    argv: list[str], timeout: float = 60, **kwargs: object
) -> subprocess.CompletedProcess[str]:
    """Run an engine command, its output captured; a failure to start is a failed result."""
    try:
        return subprocess.run(  # type: ignore[call-overload, no-any-return]
            argv, capture_output=True, text=True, timeout=timeout, check=False, **kwargs
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return subprocess.CompletedProcess(argv, 1, "", str(e))


def _warnings(name: str, version: str) -> tuple[str, ...]:
    found = version_tuple(version)
    if not found:
        return (f"{name} {version}: version unknown, cannot tell which engine CVEs it fixes",)
    if name == "docker":
        if found < DOCKER_FIXED:
            return (
                f"docker {version} is older than 25.0.2 (BuildKit 0.12.5), which fixes "
                "CVE-2024-23651/23652/23653 (cache and RUN --mount escapes): upgrade",
            )
        return ()
    old = [
        f"{cve} ({what}; fixed in podman {' / '.join('.'.join(map(str, f)) for f in fixes)})"
        for cve, fixes, what in PODMAN_FIXES
        if not fixed(found, fixes)
    ]
    if not old:
        return ()
    return (
        f"podman {version} predates the fixes of " + "; ".join(old) + ". The grader refuses "
        "the Dockerfile features these use and builds as an unprivileged user with a storage "
        "of its own; upgrade podman where your distribution offers it",
    )


def detect(wanted: str = "auto") -> tuple[Engine | None, str]:
    """The engine to build with, or None and why not (stage 6's build checks then skip)."""
    if wanted == "none":
        return None, "container checks turned off (--engine none)"
    reasons = []
    for name in ["docker", "podman"] if wanted == "auto" else [wanted]:
        path = shutil.which(name)
        if path is None:
            reasons.append(f"no {name}")
            continue
        if name == "docker":
            info = run_quiet([path, "version", "--format", "{{.Server.Version}}"])
            if info.returncode != 0 or not info.stdout.strip():
                reasons.append("docker has no daemon")
                continue
            version = info.stdout.strip()
            return Engine(name, path, version, warnings=_warnings(name, version)), ""
        engine, why = _podman(path)
        if engine is not None:
            return engine, ""
        reasons.append(why)
    return None, "; ".join(reasons)


def _podman(path: str) -> tuple[Engine | None, str]:
    version = run_quiet([path, "version", "--format", "{{.Client.Version}}"]).stdout.strip()
    fmt = ["info", "--format", "{{.Store.GraphDriverName}} {{.Store.GraphRoot}}"]
    if os.geteuid() != 0:
        info = run_quiet([path, *fmt])
        if info.returncode != 0:
            return None, "podman does not answer `podman info`"
        driver, _, store = info.stdout.strip().partition(" ")
        return Engine(
            "podman",
            path,
            version,
            warnings=_warnings("podman", version),
            driver=driver,
            store=store,
        ), ""
    try:
        user = pwd.getpwnam(BUILD_USER)
    except KeyError:
        return None, (
            f"the grader runs as root and builds untrusted Dockerfiles only as an unprivileged "
            f"user: create it with `useradd -m {BUILD_USER}` (it needs subuid/subgid ranges, "
            "which useradd gives)"
        )
    tun = Path("/dev/net/tun")
    if tun.exists() and tun.stat().st_mode & 0o006 != 0o006:
        return None, (
            f"rootless podman needs /dev/net/tun open to all users (its usual mode 0666; "
            f"here {oct(tun.stat().st_mode & 0o777)}): chmod 0666 /dev/net/tun"
        )
    home = Path(user.pw_dir)
    engine = Engine(
        "podman", path, version, BUILD_USER, user.pw_uid, home, _warnings("podman", version)
    )
    with contextlib.suppress(OSError):
        home.chmod(0o700)  # nothing of its storage for other users
    probe_dir = Path(tempfile.mkdtemp(prefix="grader-podman-"))
    try:
        os.chown(probe_dir, user.pw_uid, user.pw_gid)
        info = run_quiet(engine.wrap([path, *fmt]), env=engine.env(probe_dir), cwd="/")
    finally:
        shutil.rmtree(probe_dir, ignore_errors=True)
    if info.returncode != 0:
        return None, f"rootless podman as {BUILD_USER} does not work: {info.stderr[-300:]}"
    driver, _, store = info.stdout.strip().partition(" ")
    return dataclasses.replace(engine, driver=driver, store=store), ""


def ensure_images(engine: Engine, images: Iterable[str]) -> None:
    """Copy base images the build user lacks from the root engine's storage (`podman save |
    podman load` as that user): the grader's trusted images, once per machine."""
    if engine.user is None:
        return
    for image in images:
        tmp = Path(tempfile.mkdtemp(prefix="grader-load-"))
        try:
            os.chown(tmp, engine.uid or 0, -1)
            env = engine.env(tmp)
            mine = run_quiet(engine.wrap([engine.path, "image", "exists", image]), env=env, cwd="/")
            if mine.returncode == 0:
                continue
            if run_quiet([engine.path, "image", "exists", image]).returncode != 0:
                continue  # the build will try to pull it
            save = subprocess.Popen(
                [engine.path, "save", image], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
            )
            subprocess.run(
                engine.wrap([engine.path, "load"]),
                stdin=save.stdout,
                capture_output=True,
                env=env,
                cwd="/",
                timeout=600,
                check=False,
            )
            save.wait()
        except (OSError, subprocess.TimeoutExpired):
            pass
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def helpers() -> None:
    """The engine's helper wrappers (root-owned, read-only to others), written if missing."""
    own_dir(RUNS, 0o711)
    own_dir(HELPERS, 0o755)
    slirp = HELPERS / "slirp4netns"
    if Path("/usr/bin/slirp4netns").exists() and (not slirp.exists() or slirp.read_text() != SLIRP):
        tmp = slirp.with_suffix(".tmp")
        tmp.write_text(SLIRP)
        tmp.chmod(0o755)
        tmp.replace(slirp)
