"""The Codespaces dev container: valid, and it sets up what the steps need."""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema
import pytest

from tests.engines import base_images
from tests.support import ROOT, shared_file

DEVCONTAINER = ROOT / ".devcontainer" / "devcontainer.json"


def strip_json_comments(text: str) -> str:
    """JSON with comments (devcontainer.json's format) → plain JSON; strings stay untouched."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(text[i : j + 1])
            i = j + 1
        elif text.startswith("//", i):
            i = text.find("\n", i)
            i = n if i < 0 else i
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            assert end >= 0, "unterminated /* comment"
            i = end + 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def test_comment_stripper():
    text = '// top\n{"a": "http://x//y", /* b */ "c": "\\"//"} // end'
    assert json.loads(strip_json_comments(text)) == {"a": "http://x//y", "c": '"//'}


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    # Trailing commas are not allowed (the schema says so): plain json.loads after the comments.
    return json.loads(strip_json_comments(DEVCONTAINER.read_text()))


def test_matches_the_schema(config: dict[str, Any]):
    schema = json.loads(shared_file("schemas", "devContainer.base.schema.json").read_text())
    jsonschema.Draft201909Validator(schema).validate(config)


def test_python_matches_the_project(config: dict[str, Any]):
    version = (ROOT / ".python-version").read_text().strip()
    assert re.fullmatch(
        rf"mcr\.microsoft\.com/devcontainers/python:(\d+-)?{re.escape(version)}(-bookworm)?",
        config["image"],
    ), config["image"]


def test_features_for_docker_uv_and_flyctl(config: dict[str, Any]):
    features = config["features"]
    names = {re.sub(r":[^/]*$", "", ref).rsplit("/", 1)[-1]: opts for ref, opts in features.items()}
    assert {"docker-in-docker", "uv", "flyctl"} <= set(names)
    # uv in the dev container is the release the Dockerfile pins.
    [uv_image] = [i for i in base_images(ROOT / "06-docker" / "Dockerfile") if "astral-sh/uv" in i]
    assert names["uv"].get("version") == uv_image.rsplit(":", 1)[1]


def test_sets_up_the_environment_and_the_port(config: dict[str, Any]):
    assert "uv sync --locked" in config["postCreateCommand"]
    # what `grade doctor` asks for: a student is graded in the same sandbox as by the instructor
    assert "bubblewrap" in config["postCreateCommand"]
    assert 9696 in config["forwardPorts"]
    assert "ms-python.python" in config["customizations"]["vscode"]["extensions"]
