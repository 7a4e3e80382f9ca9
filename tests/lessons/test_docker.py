"""Step 06-docker: the Dockerfile follows uv's Docker guide; the image builds, runs, answers."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.engines import (
    base_images,
    build,
    cmd_port,
    expected_probability,
    image_tag,
    instructions,
    process_uids,
    running,
    trained_copy,
)
from tests.support import EXAMPLE_CUSTOMER, ROOT, http

STEP = ROOT / "06-docker"


# --- static checks: what the Dockerfile says -------------------------------------------------


def test_base_images_are_pinned():
    python_version = (STEP / ".python-version").read_text().strip()
    images = base_images(STEP / "Dockerfile")
    python_images = [i for i in images if i.startswith("python:")]
    uv_images = [i for i in images if i.startswith("ghcr.io/astral-sh/uv:")]
    assert python_images == [f"python:{python_version}-slim-bookworm"]
    assert len(uv_images) == 1 and re.fullmatch(r".*:\d+\.\d+\.\d+", uv_images[0]), uv_images


def test_dockerfile_follows_the_uv_guide():
    steps = instructions(STEP / "Dockerfile")
    runs = [args for kw, args, _ in steps if kw == "RUN"]
    deps = next(i for i, (kw, a, _) in enumerate(steps) if "--no-install-project" in a)
    code = next(i for i, (kw, a, _) in enumerate(steps) if kw == "COPY" and "predict.py" in a)
    assert "uv sync --locked --no-install-project --no-dev" in steps[deps][1]
    assert deps < code, "dependencies must get their own layer before the code"
    assert any("uv sync --locked --no-dev" in r and "--no-install-project" not in r for r in runs)
    assert "pipeline.bin" in steps[code][1], "the trained model must be copied into the image"
    for _, args, _ in steps:  # podman needs absolute bind-mount targets
        for target in re.findall(r"type=bind,[^ ]*target=([^ ,]+)", args):
            assert target.startswith("/"), f"bind mount target {target} must be absolute"
    env = " ".join(a for kw, a, _ in steps if kw == "ENV")
    assert re.search(r"PATH=\"?/app/\.venv/bin:", env)
    users = [a for kw, a, _ in steps if kw == "USER"]
    assert users and users[-1] not in {"root", "0"}, "the service must not run as root"


def test_port_and_host_agree():
    steps = instructions(STEP / "Dockerfile")
    assert [a for kw, a, _ in steps if kw == "EXPOSE"] == ["9696"]
    assert cmd_port(STEP / "Dockerfile") == ("0.0.0.0", 9696)


def test_every_instruction_is_explained():
    for keyword, args, comments in instructions(STEP / "Dockerfile"):
        assert comments, f"{keyword} {args[:50]} has no comment above it"


def test_dockerignore_keeps_the_environment_out_and_the_model_in():
    patterns = {
        line.strip()
        for line in (STEP / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert ".venv" in patterns
    assert not patterns & {"*.bin", "pipeline.bin"}, "the image needs pipeline.bin"


# --- the image, built and run for real ---------------------------------------------------------


@pytest.fixture(scope="module")
def context(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return trained_copy("06-docker", tmp_path_factory.mktemp("docker"))


@pytest.fixture(scope="module")
def image(container_engine: str, context: Path) -> str:
    tag = image_tag("06-docker")
    build(container_engine, context, tag)
    return tag


@pytest.mark.slow
@pytest.mark.container
def test_image_answers_like_the_pipeline(container_engine: str, image: str, context: Path):
    with running(container_engine, image, 9696, "/ping") as (name, base):
        assert http("GET", base + "/ping") == (200, {"status": "ok"})
        status, body = http("POST", base + "/predict", EXAMPLE_CUSTOMER)
        assert status == 200, body
        assert isinstance(body, dict)
        assert body["churn_probability"] == pytest.approx(expected_probability(context), abs=1e-9)
        assert body["churn"] is (body["churn_probability"] >= 0.5)
        bad = {k: v for k, v in EXAMPLE_CUSTOMER.items() if k != "tenure"}
        assert http("POST", base + "/predict", bad)[0] == 422
        uids = process_uids(container_engine, name)
        assert 0 not in uids, f"the service runs as root (uids {uids})"


@pytest.mark.slow
@pytest.mark.container
def test_stale_lock_fails_the_build(container_engine: str, context: Path, tmp_path: Path):
    """`uv sync --locked` refuses a uv.lock that no longer matches pyproject.toml."""
    stale = tmp_path / "stale"
    shutil.copytree(context, stale)
    pyproject = stale / "pyproject.toml"
    text = pyproject.read_text().replace('"fastapi>=0.165.0",', '"fastapi>=0.165.0",\n    "six",')
    assert "six" in text
    pyproject.write_text(text)
    with pytest.raises(AssertionError, match=r"uv\.lock.* needs to be updated"):
        build(container_engine, stale, image_tag("06-docker-stale"))
