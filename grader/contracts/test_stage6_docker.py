"""Stage 6 (docker): static Dockerfile checks always; build and run where the run has a
container engine (`needs="engine"`: skipped for every student otherwise, never passed)."""

from __future__ import annotations

import re

from grader.checks import check, expect
from grader.contracts.common import caused, check_prediction, ignores_input, trained
from grader.grading.requests import EXAMPLE
from grader.grading.session import Grading
from grader.submission import dockerfile
from grader.submission.dockerfile import Dockerfile


def _dockerfile(grading: Grading) -> Dockerfile:
    df = grading.dockerfile
    if df is None:
        caused(grading, "dockerfile", "there is no Dockerfile in the folder")
    return df


def skip_note(grading: Grading, check_id: str) -> str:
    """Added to the skip of a check that needs an engine the run lacks (contracts' conftest):
    what 6.9 would have said anyway, since the grader builds nothing it refuses."""
    if check_id != "6.9":
        return ""
    try:
        refused = grading.dockerfile_policy
    except Exception:  # an unreadable Dockerfile: 6.1 says why
        return ""
    return (
        ". Besides, the grader would not build this Dockerfile:\n- " + "\n- ".join(refused)
        if refused
        else ""
    )


@check("6.1", "base image pinned", points=1)
def test_base_pinned(grading: Grading) -> None:
    df = _dockerfile(grading)
    images = df.base_images()
    expect(images, "the Dockerfile has no FROM line")
    base = images[-1]
    tag = base.split("@")[0].rsplit(":", 1)[1] if ":" in base.split("/")[-1] else ""
    expect(
        "@sha256:" in base or re.match(r"\d+\.\d+", tag),
        f"FROM {base}: pin the Python version, e.g. FROM python:3.13-slim-bookworm "
        "(not `latest` or no tag)",
    )


@check("6.2", "uv pinned", points=1)
def test_uv_pinned(grading: Grading) -> None:
    df = _dockerfile(grading)
    copies = " ".join(i.args for i in df.all("COPY"))
    runs = df.text("RUN")
    pinned = re.search(r"ghcr\.io/astral-sh/uv:\d+\.\d+", copies) or any(
        dockerfile.VERSION.search(dockerfile.after(line, dockerfile.INSTALLERS))
        for line in runs.splitlines()
    )
    expect(
        pinned,
        "pin uv: COPY --from=ghcr.io/astral-sh/uv:0.13.9 /uv /uvx /bin/ "
        "(a version tag, not latest)",
    )


@check("6.3", "dependencies installed from the lock (uv sync --locked)", points=1)
def test_locked_sync(grading: Grading) -> None:
    runs = _dockerfile(grading).text("RUN")
    synced = any(
        "--locked" in rest or "--frozen" in rest
        for rest in (dockerfile.after(line, ("uv sync",)) for line in runs.splitlines())
    )
    expect(
        synced,
        "install with `RUN uv sync --locked` (fails if uv.lock is stale) so the image gets "
        "exactly the locked versions",
    )


@check("6.4", "the app and the model are copied into the image", points=1)
def test_copies_app(grading: Grading) -> None:
    df = _dockerfile(grading)
    copied = " ".join(i.args for i in df.all("COPY") + df.all("ADD"))
    words = copied.split()
    has_all = any(w in (".", "./") for w in words[:-1]) if words else False
    missing = [n for n in ("predict.py", "pipeline.bin") if n not in copied]
    expect(
        has_all or not missing,
        f"the Dockerfile does not COPY {missing}: the image needs the app and the model it loads",
    )


@check("6.5", f"port exposed ({9696})", points=1)
def test_port(grading: Grading) -> None:
    df = _dockerfile(grading)
    port = grading.spec.port
    expect(port in df.exposed_ports(), f"add EXPOSE {port}")
    served = df.served_port()
    expect(served == port, f"the command serves on port {served}, not {port}: --port {port}")


@check("6.6", "runs as a non-root user", points=1)
def test_non_root(grading: Grading) -> None:
    user = _dockerfile(grading).user()
    expect(
        user and user.split(":")[0] not in ("root", "0"),
        "the container runs as root: add a user (RUN useradd --system app) and `USER app` "
        "before CMD",
    )


@check("6.7", "server listens on 0.0.0.0", points=1)
def test_host(grading: Grading) -> None:
    df = _dockerfile(grading)
    host = df.host()
    expect(
        host == "0.0.0.0",
        f"the command binds {host or 'the default host (127.0.0.1)'}: inside a container "
        "that is unreachable from outside; use --host 0.0.0.0",
    )


@check("6.8", ".dockerignore excludes .venv", points=1)
def test_dockerignore(grading: Grading) -> None:
    text = grading.submitted_text(".dockerignore")
    expect(
        text is not None,
        "add a .dockerignore with `.venv` so the host's environment is not copied into the image",
    )
    assert text is not None
    lines = {line.strip().rstrip("/").removeprefix("/") for line in text.splitlines()}
    expect(lines & {".venv", "**/.venv", ".venv*", ".*"}, ".dockerignore must list .venv")


@check("6.9", "the image builds", points=2, needs="engine")
def test_builds(grading: Grading) -> None:
    _dockerfile(grading)
    refused = grading.dockerfile_policy
    if refused:
        grading.causes.charge("image")
    expect(not refused, "the grader does not build this Dockerfile:\n- " + "\n- ".join(refused))
    trained(grading)  # the Dockerfile copies the models train.py writes
    build = grading.image
    if build is None or build.returncode != 0:
        grading.causes.charge("image")
    expect(build is not None, "the image build did not finish within 20 minutes")
    assert build is not None
    tail = "\n".join((build.stdout + build.stderr).strip().splitlines()[-12:])
    expect(build.returncode == 0, f"`docker build .` failed:\n{tail}")


@check("6.10", "the container answers /ping and /predict", points=2, needs="engine")
def test_container_serves(grading: Grading) -> None:
    _dockerfile(grading)
    trained(grading)
    build = grading.image
    if build is None or build.returncode != 0:
        caused(grading, "image", "the image did not build, so no container could start")
    run = grading.container
    tail = "\n".join(run.server_log.strip().splitlines()[-12:])
    why = f"{run.problem}\n" if run.problem else ""
    expect(
        run.started,
        f"the container did not answer GET {grading.spec.ping_path} on port "
        f"{grading.served_port}:\n{why}{tail}",
    )
    problem = check_prediction(grading, run.get(EXAMPLE), None, "the container", run, names=False)
    expect(problem is None, str(problem))
    constant = ignores_input(grading, run, "the container")
    expect(constant is None, str(constant))
