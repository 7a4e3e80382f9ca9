from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT, SHARED, dataset


@pytest.fixture(scope="session")
def churn_csv() -> Path:
    return dataset("CHURN_DATA")


@pytest.fixture(scope="session")
def credit_csv() -> Path:
    return dataset("CREDIT_DATA")


def base_images() -> list[str]:
    """The images named in FROM lines of the repository's Dockerfiles (not build stages)."""
    images: set[str] = set()
    for dockerfile in ROOT.glob("*/Dockerfile"):
        stages: set[str] = set()
        for line in dockerfile.read_text().splitlines():
            m = re.match(r"^\s*FROM\s+(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?", line, re.I)
            if m:
                if m[1] not in stages:
                    images.add(m[1])
                if m[2]:
                    stages.add(m[2])
        for m2 in re.finditer(r"COPY\s+--from=(\S+)", dockerfile.read_text()):
            if ":" in m2[1] or "/" in m2[1]:
                images.add(m2[1])
    return sorted(images)


ENGINES = ("podman", "docker")


def prepare_engine(name: str) -> str:
    """`name` ready to build the repository's Dockerfiles, prepared by
    ../shared/ci/container-engine.sh (stand-in base images where registries cannot be reached;
    with --docker it installs and starts Debian's Docker daemon). Skips outside CI when the
    engine cannot be had; fails in CI."""
    script = SHARED / "ci" / "container-engine.sh"
    problem = None
    if not script.exists():
        # Elsewhere (GitHub's runners, a laptop): the engine as it is installed.
        check = ["docker", "info"] if name == "docker" else ["podman", "info"]
        try:
            works = subprocess.run(check, capture_output=True, check=False).returncode == 0
        except OSError:
            works = False
        if works:
            return name
        problem = f"no working {name} here and no {script}"
    else:
        result = subprocess.run(
            ["bash", str(script), f"--{name}", *base_images()],
            capture_output=True,
            text=True,
            timeout=1200,
        )
        if result.returncode == 0 and result.stdout.strip().splitlines()[-1:] == [name]:
            return name
        problem = f"container-engine.sh --{name} failed ({result.returncode}): "
        problem += result.stderr[-2000:]
    if os.environ.get("CI"):
        pytest.fail(problem)
    pytest.skip(problem)


@pytest.fixture(scope="session", params=ENGINES)
def container_engine(request: pytest.FixtureRequest) -> str:
    """Each container engine in turn: podman, and Docker (the engine students and GitHub's
    runners have). The tests that use it run once per engine."""
    return prepare_engine(str(request.param))


@pytest.fixture(scope="session")
def podman_engine() -> str:
    """podman alone: the tests of what only podman does (rootless builds as a user of their
    own, per-run storage, the shared dependency store)."""
    return prepare_engine("podman")


@pytest.fixture(scope="session")
def docker_engine() -> str:
    """Docker alone: the READMEs' own `docker` commands, run as a student types them."""
    return prepare_engine("docker")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    # Filled by tests/lessons/test_readmes.py when it ran in this session.
    readmes = sys.modules.get("tests.lessons.test_readmes")
    summary = getattr(readmes, "SUMMARY", None)
    if not summary:
        return
    run = sum(s["run"] for s in summary.values())
    skipped = sum(s["skipped"] for s in summary.values())
    checked = sum(s["outputs_checked"] for s in summary.values())
    terminalreporter.write_sep("-", "executable READMEs")
    for readme, s in sorted(summary.items()):
        terminalreporter.write_line(
            f"{readme}: {s['run']} blocks run, {s['skipped']} marked not runnable here, "
            f"{s['outputs_checked']} outputs compared"
        )
    terminalreporter.write_line(
        f"total: {run} run, {skipped} not runnable here, {checked} outputs compared"
    )
