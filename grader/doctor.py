"""`grade doctor`: what this machine will isolate and grade, and for each missing part the one
command that fixes it. `grade setup` (grader/setup.py) makes those parts."""

from __future__ import annotations

import argparse
import os
import platform
import pwd
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from grader import containers, preflight
from grader.containers.engine import BUILD_USER, RUNS
from grader.environment import real_uv
from grader.environment.install import shared_root
from grader.sandbox.bwrap import bwrap_problem
from grader.sandbox.owned import NotOurs, check_dir
from grader.sandbox.uids import locks_folder
from grader.specs import SPECS, DatasetMissing

SETUP = "sudo uv run --group grader grade setup"


@dataclass(frozen=True)
class Finding:
    """One part of a grading machine: in order or not, what it means, and the fix."""

    part: str
    ok: bool
    detail: str
    fix: str = ""


def sandbox() -> Finding:
    how = preflight.mode()
    if how == "bubblewrap":
        who = (
            "an unprivileged uid of its own per submission"
            if os.geteuid() == 0
            else "your own uid (run as root for a uid per submission)"
        )
        return Finding("sandbox", True, f"bubblewrap: student code runs isolated, as {who}")
    if platform.system() != "Linux":
        return Finding(
            "sandbox",
            False,
            f"{bwrap_problem()}: your own check runs without isolation; grade a cohort on Linux",
        )
    fix = SETUP if os.geteuid() == 0 or shutil.which("sudo") else "apt-get install bubblewrap"
    return Finding("sandbox", False, bwrap_problem(), fix)


def shared_folders() -> Finding:
    folders = [shared_root(), RUNS] + ([locks_folder()] if os.geteuid() == 0 else [])
    for folder in folders:
        try:
            check_dir(folder)
        except NotOurs as e:
            return Finding("shared folders", False, str(e), f"rm -rf {folder}")
    return Finding("shared folders", True, ", ".join(map(str, folders)) + ": the grader's own")


def uv() -> Finding:
    path = real_uv()
    if path is None:
        return Finding(
            "uv",
            False,
            "uv is not installed: locked environments and stage 5 need it",
            "pip install uv",
        )
    return Finding("uv", True, path)


def datasets() -> list[Finding]:
    found = []
    for spec in SPECS.values():
        try:
            found.append(Finding(f"dataset {spec.name}", True, str(spec.dataset_path())))
        except DatasetMissing as e:
            fix = f"export {spec.env_var}=/path/to/{spec.dataset_file}"
            found.append(Finding(f"dataset {spec.name}", False, str(e), fix))
    return found


def engine(wanted: str = "auto") -> Finding:
    found, why = containers.detect(wanted)
    if found is None:
        fix = SETUP if os.geteuid() == 0 or "podman" in why else "install podman or Docker"
        return Finding("container engine (stage 6)", False, why, fix)
    detail = found.describe() + "".join(f". WARNING: {w}" for w in found.warnings)
    return Finding("container engine (stage 6)", True, detail)


def build_user() -> Finding | None:
    """As root with podman: the unprivileged user that builds students' Dockerfiles."""
    if os.geteuid() != 0 or not shutil.which("podman"):
        return None
    try:
        user = pwd.getpwnam(BUILD_USER)
    except KeyError:
        return Finding("build user", False, f"no user {BUILD_USER}", SETUP)
    missing = [tool for tool in ("newuidmap", "newgidmap", "slirp4netns") if not shutil.which(tool)]
    if missing:
        return Finding("build user", False, f"rootless podman needs {', '.join(missing)}", SETUP)
    home = Path(user.pw_dir)
    if home.stat().st_mode & 0o077:
        return Finding("build user", False, f"{home} is readable by others", f"chmod 0700 {home}")
    return Finding("build user", True, f"{BUILD_USER} (home {home}, 0700)")


def findings(wanted_engine: str = "auto") -> list[Finding]:
    found = [sandbox(), shared_folders(), uv(), *datasets(), engine(wanted_engine)]
    user = build_user()
    return found + ([user] if user is not None else [])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="grade doctor",
        description="Say what this machine will isolate and grade, and how to fix what is "
        "missing. Exits 1 when the sandbox (or, with --require-engine, stage 6) is missing.",
    )
    parser.add_argument("--engine", default="auto", choices=("auto", "docker", "podman"))
    parser.add_argument(
        "--require-engine", action="store_true", help="a missing container engine is a failure too"
    )
    args = parser.parse_args(argv)
    results = findings(args.engine)
    for f in results:
        mark = "ok " if f.ok else "MISSING"
        print(f"[{mark:^7}] {f.part}: {f.detail}")
        if not f.ok and f.fix:
            print(f"          fix: {f.fix}")
    needed = {"sandbox", "shared folders"} | (
        {"container engine (stage 6)", "build user"} if args.require_engine else set()
    )
    broken = [f.part for f in results if not f.ok and f.part in needed]
    print(
        f"\n{'NOT READY: ' + ', '.join(broken) if broken else 'ready'} (grader: {sys.executable})"
    )
    return 1 if broken else 0
