"""`grade setup` (as root, Debian or Ubuntu): install and configure what grading needs, so that
`grade doctor` finds it all. Idempotent: what is in place already is left as it is.

- bubblewrap, the sandbox of student code;
- podman and what it needs to build as an unprivileged user (uidmap, slirp4netns), unless
  `--no-podman` (a machine whose engine is Docker);
- the build user (`grader-build`, home 0700, subuid/subgid ranges from useradd) and its podman
  configuration (overlay storage; cgroupfs and no default ulimits where no systemd session
  manages it); /dev/net/tun open to all (its usual mode), for rootless networking;
- where the kernel forbids unprivileged user namespaces (Ubuntu 24.04's AppArmor restriction,
  Debian's `unprivileged_userns_clone`), the sysctl that allows them, kept in /etc/sysctl.d."""

from __future__ import annotations

import argparse
import os
import pwd
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from grader.containers.engine import BUILD_USER
from grader.sandbox.bwrap import bwrap_problem

PACKAGES = {
    "bwrap": "bubblewrap",
    "podman": "podman",
    "newuidmap": "uidmap",
    "slirp4netns": "slirp4netns",
}
STORAGE = '[storage]\ndriver = "overlay"\n'
CONTAINERS = """[containers]
default_ulimits = []

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
"""
USERNS = {  # sysctl file: what lets unprivileged users create namespaces
    "/proc/sys/kernel/apparmor_restrict_unprivileged_userns": "0",
    "/proc/sys/kernel/unprivileged_userns_clone": "1",
}
SYSCTL_FILE = Path("/etc/sysctl.d/60-grader-userns.conf")


def say(text: str) -> None:
    print(f"grade setup: {text}", flush=True)


def packages(podman: bool) -> None:
    wanted = [
        pkg
        for tool, pkg in PACKAGES.items()
        if shutil.which(tool) is None and (podman or tool == "bwrap")
    ]
    if not wanted:
        say("packages: in place")
        return
    if shutil.which("apt-get") is None:
        raise SystemExit(f"grade setup: install {', '.join(wanted)} with your package manager")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    say(f"installing {', '.join(wanted)}")
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *wanted], check=True, env=env
    )


def userns() -> None:
    """Allow unprivileged user namespaces where the kernel forbids them (bubblewrap and
    rootless podman need them)."""
    if not bwrap_problem():
        return
    for knob, value in USERNS.items():
        path = Path(knob)
        if path.exists() and path.read_text().strip() != value:
            name = knob.removeprefix("/proc/sys/").replace("/", ".")
            say(f"{name} = {value} (it forbade the namespaces bubblewrap needs)")
            path.write_text(value)
            lines = SYSCTL_FILE.read_text().splitlines() if SYSCTL_FILE.exists() else []
            SYSCTL_FILE.write_text("\n".join([*lines, f"{name} = {value}"]) + "\n")


def build_user() -> None:
    try:
        user = pwd.getpwnam(BUILD_USER)
    except KeyError:
        say(f"creating the build user {BUILD_USER}")
        subprocess.run(["useradd", "-m", "-s", "/usr/sbin/nologin", BUILD_USER], check=True)
        user = pwd.getpwnam(BUILD_USER)
    home = Path(user.pw_dir)
    home.chmod(0o700)
    config = home / ".config" / "containers"
    for folder in (home / ".config", config):
        folder.mkdir(mode=0o700, exist_ok=True)
        os.lchown(folder, user.pw_uid, user.pw_gid)
    for name, text in (("storage.conf", STORAGE), ("containers.conf", CONTAINERS)):
        path = config / name
        if not path.exists():
            say(f"writing {path}")
            path.write_text(text)
            os.lchown(path, user.pw_uid, user.pw_gid)
    tun = Path("/dev/net/tun")
    if tun.exists() and tun.stat().st_mode & 0o777 != 0o666:
        say("chmod 0666 /dev/net/tun (rootless networking)")
        tun.chmod(0o666)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="grade setup",
        description="Install and configure what grading needs (Debian/Ubuntu, as root).",
    )
    parser.add_argument(
        "--no-podman",
        action="store_true",
        help="the sandbox only (a machine whose container engine is Docker)",
    )
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print(
            "grade setup installs packages and a user: run it as root (sudo uv run --group "
            "grader grade setup)"
        )
        return 2
    packages(podman=not args.no_podman)
    userns()
    if not args.no_podman:
        build_user()
    problem = bwrap_problem()
    if problem:
        print(f"grade setup: the sandbox still cannot start: {problem}")
        return 1
    say("done; `uv run --group grader grade doctor` says what this machine will grade")
    return 0
