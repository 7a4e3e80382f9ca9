"""grader/submission/dockerpolicy.py: the build policy over what the reader read; the dependency
steps a shared store may key on."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.submission import dockerfile, dockerpolicy
from tests.support import ROOT

BASE = "FROM python:3.13-slim-bookworm\n"


def problems(text: str) -> list[str]:
    return dockerpolicy.policy_problems(dockerfile.parse(text))


REPOSITORY = sorted(
    p.relative_to(ROOT)
    for pattern in ("*/Dockerfile", "tests/grader/fixtures/*/Dockerfile")
    for p in ROOT.glob(pattern)
)


@pytest.mark.parametrize("path", REPOSITORY, ids=str)
def test_every_dockerfile_of_the_repository_is_accepted(path: Path) -> None:
    text = (ROOT / path).read_text()
    assert problems(text) == []


def test_dependency_steps_are_keyed_only_on_what_the_reader_understood() -> None:
    shared = BASE + "COPY uv.lock pyproject.toml ./\nRUN uv sync --locked\nCOPY . .\n"
    steps = dockerpolicy.dependency_steps(shared)
    assert steps is not None and steps.text == BASE + "COPY uv.lock pyproject.toml ./\n" + (
        "RUN uv sync --locked\n"
    )
    for later in ("RUN echo \\\n\n ok\n", "ONBUILD RUN ls\n", "# escape=`\n"):
        assert dockerpolicy.dependency_steps(shared + later) is None, later
