"""Step 07-flyio: fly.toml is valid, agrees with the Dockerfile and the app, and its image runs
the way fly starts it (internal_port, the VM's memory, healthy on the check path), using the
memory that the course quotes (one figure, in 07's README, fly.toml and 09's README)."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.engines import (
    build,
    cmd_port,
    expected_probability,
    image_tag,
    instructions,
    running,
    trained_copy,
)
from tests.support import EXAMPLE_CUSTOMER, ROOT, http

STEP = ROOT / "07-flyio"
# The fly.toml schema ships with the grader (its copy is the one the grader checks against).
SCHEMA = ROOT / "grader" / "schemas" / "fly.schema.json"


@pytest.fixture(scope="module")
def fly() -> dict[str, Any]:
    return tomllib.loads((STEP / "fly.toml").read_text())


def app_routes(predict_py: Path) -> set[tuple[str, str]]:
    """(METHOD, path) of every @app.<method>("path") route in predict.py, read without importing."""
    routes = set()
    for node in ast.walk(ast.parse(predict_py.read_text())):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for deco in node.decorator_list:
            if (
                isinstance(deco, ast.Call)
                and isinstance(deco.func, ast.Attribute)
                and isinstance(deco.func.value, ast.Name)
                and deco.func.value.id == "app"
                and deco.args
                and isinstance(deco.args[0], ast.Constant)
            ):
                routes.add((deco.func.attr.upper(), str(deco.args[0].value)))
    return routes


def memory_mb(value: str | int) -> int:
    """fly's VM memory ("512mb", "1gb" or a number of MB) in MB."""
    if isinstance(value, int):
        return value
    match = re.fullmatch(r"(\d+)\s*(mb|gb)", value.strip().lower())
    assert match, f"unreadable [[vm]] memory {value!r}"
    return int(match.group(1)) * (1024 if match.group(2) == "gb" else 1)


# Where the course quotes the memory the service uses: one measured figure, in MB.
MEMORY_QUOTES = {
    "07-flyio/README.md": r"About (\d+) MB here",
    "07-flyio/README.md, [[vm]] row": r"the service uses (\d+) MB of memory",
    **{
        f"{s}/fly.toml": r"Step 07's service uses (\d+) MB"
        for s in ("07-flyio", "08-hardening", "09-onnx")
    },
    "09-onnx/README.md, measured table": r"\| resident memory[^|]*\| (\d+) MB \|",
}


def memory_quotes() -> dict[str, int]:
    found = {}
    for where, pattern in MEMORY_QUOTES.items():
        match = re.search(pattern, (ROOT / where.split(",")[0]).read_text())
        assert match, f"{where} no longer quotes the memory figure ({pattern})"
        found[where] = int(match[1])
    return found


def test_memory_is_one_figure():
    quotes = memory_quotes()
    assert len(set(quotes.values())) == 1, f"the memory figures disagree: {quotes}"


def resident_mb(engine_name: str, container: str) -> float:
    """VmRSS of the container's process 1 (uvicorn), in MB, as 07's README reads it."""
    command = [engine_name, "exec", container, "cat", "/proc/1/status"]
    status = subprocess.run(command, check=True, capture_output=True, text=True, timeout=30)
    line = next(x for x in status.stdout.splitlines() if x.startswith("VmRSS:"))
    return int(line.split()[1]) / 1000


def test_fly_toml_matches_the_schema(fly: dict[str, Any]):
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft7Validator(schema).validate(fly)
    # The schema allows unknown keys; a misspelled one would be silently ignored by fly.
    known = schema["properties"]
    assert set(fly) <= set(known), set(fly) - set(known)
    assert set(fly["http_service"]) <= set(known["http_service"]["properties"])


def test_fly_toml_settings(fly: dict[str, Any]):
    assert fly["app"] and fly["primary_region"]
    service = fly["http_service"]
    assert service["force_https"] is True
    assert service["auto_stop_machines"] == "stop"
    assert service["auto_start_machines"] is True
    assert service["min_machines_running"] == 0
    [vm] = fly["vm"]
    assert memory_mb(vm["memory"]) >= 256


def test_internal_port_is_exposed_and_served(fly: dict[str, Any]):
    dockerfile = STEP / "Dockerfile"
    expose = [int(a) for kw, a, _ in instructions(dockerfile) if kw == "EXPOSE"]
    host, port = cmd_port(dockerfile)
    assert expose == [port] == [fly["http_service"]["internal_port"]]
    assert host == "0.0.0.0", "fly's proxy reaches the machine from outside: bind 0.0.0.0"


def test_health_check_path_is_a_route(fly: dict[str, Any]):
    checks = fly["http_service"]["checks"]
    assert checks, "fly.toml needs an [[http_service.checks]] HTTP check"
    routes = app_routes(STEP / "predict.py")
    assert ("GET", "/ping") in routes  # sanity check of the parser itself
    for check in checks:
        assert check.get("grace_period"), "a check needs a grace period (the model loads first)"
        method = check.get("method", "GET").upper()
        assert (method, check["path"]) in routes, f"{method} {check['path']} is no route"


@pytest.fixture(scope="module")
def context(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return trained_copy("07-flyio", tmp_path_factory.mktemp("flyio"))


@pytest.mark.slow
@pytest.mark.container
def test_image_runs_as_fly_starts_it(container_engine: str, context: Path, fly: dict[str, Any]):
    tag = image_tag("07-flyio")
    build(container_engine, context, tag)
    service = fly["http_service"]
    check_path = service["checks"][0]["path"]
    memory = f"{memory_mb(fly['vm'][0]['memory'])}m"
    with running(
        container_engine, tag, service["internal_port"], check_path, run_args=["--memory", memory]
    ) as (name, base):
        assert 200 <= http("GET", base + check_path)[0] < 300
        status, body = http("POST", base + "/predict", EXAMPLE_CUSTOMER)
        assert status == 200, body
        assert isinstance(body, dict)
        assert body["churn_probability"] == pytest.approx(expected_probability(context), abs=1e-9)
        used = resident_mb(container_engine, name)
    print(f"07's service in its container, after its first answer: {used:.0f} MB resident")
    quoted = memory_quotes()["07-flyio/README.md"]
    assert abs(used - quoted) <= quoted / 5, f"it uses {used:.0f} MB; the course says {quoted} MB"
