"""Helpers of the grader's tests: run `grade` in a child process, build lesson variants."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from grader.results.report import CheckResult, Report, parse_check_id
from tests.support import ROOT, copy_step, data_env, where_no_sandbox

GRADESCOPE_SCHEMA = ROOT / "grader" / "schemas" / "gradescope-results.schema.json"

DOCKERFILE = """\
FROM python:3.13-slim-bookworm
COPY --from=ghcr.io/astral-sh/uv:0.13.9 /uv /uvx /bin/
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=0
WORKDIR /app
RUN --mount=type=cache,target=/root/.cache/uv \\
    --mount=type=bind,source=uv.lock,target=/app/uv.lock \\
    --mount=type=bind,source=pyproject.toml,target=/app/pyproject.toml \\
    uv sync --locked --no-install-project --no-dev
COPY predict.py pipeline.bin ./
RUN useradd --system --no-create-home app
USER app
ENV PATH="/app/.venv/bin:$PATH"
EXPOSE 9696
CMD ["uvicorn", "predict:app", "--host", "0.0.0.0", "--port", "9696"]
"""

FLY_TOML = """\
app = "churn-test"
primary_region = "ams"

[build]
  dockerfile = "Dockerfile"

[http_service]
  internal_port = 9696
  force_https = true
  auto_stop_machines = "stop"
  auto_start_machines = true
  min_machines_running = 0

  [[http_service.checks]]
    method = "GET"
    path = "/ping"
    interval = "30s"
    timeout = "5s"
    grace_period = "10s"
"""


def grade(path: Path, *args: str, timeout: float = 600) -> tuple[int, dict[str, Any], str]:
    """`python -m grader.cli PATH --json FILE ARGS...`: (exit code, results.json, stdout)."""
    out = path.parent / f"{path.name}-results.json"
    args = tuple(where_no_sandbox(args, path.parent))
    proc = subprocess.run(
        [sys.executable, "-m", "grader.cli", str(path), "--json", str(out), *args],
        capture_output=True,
        text=True,
        env=data_env(),
        timeout=timeout,
        check=False,
        cwd=ROOT,
    )
    assert out.is_file(), f"no results.json (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    results = json.loads(out.read_text())
    valid_gradescope(results)
    return proc.returncode, results, proc.stdout


@functools.cache
def _validator() -> Any:
    import jsonschema

    schema = json.loads(GRADESCOPE_SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def valid_gradescope(results: dict[str, Any]) -> None:
    """Fail unless `results` is Gradescope's documented results.json format (the schema the
    grader ships: grader/schemas/gradescope-results.schema.json)."""
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in _validator().iter_errors(results)]
    assert not errors, f"results.json is not Gradescope's format: {errors[:5]}"


def status(test: dict[str, Any]) -> str:
    """A test's status: "passed", "failed", or "skipped" (an informational test, no status)."""
    return str(test.get("status", "skipped"))


def max_score(results: dict[str, Any]) -> float:
    """The submission's maximum (results.json keeps it in extra_data: Gradescope has no
    top-level max_score)."""
    return float(results["extra_data"]["max_score"])


def failed(results: dict[str, Any]) -> dict[str, str]:
    """{check id: output} of the failed checks."""
    tests = results["tests"]
    return {t["extra_data"]["check"]: t["output"] for t in tests if status(t) == "failed"}


def lost(results: dict[str, Any]) -> float:
    return max_score(results) - float(results["score"])


def service_folder(dest: Path) -> Path:
    """A churn service folder at stage 7: 07-flyio if it exists, else 05-uv + Dockerfile etc."""
    if (ROOT / "07-flyio").is_dir():
        return copy_step("07-flyio", dest)
    folder = copy_step("05-uv", dest)
    target = folder.with_name("service")
    folder.rename(target)
    (target / "Dockerfile").write_text(DOCKERFILE)
    (target / ".dockerignore").write_text(".venv\n__pycache__\n*.csv\n")
    (target / "fly.toml").write_text(FLY_TOML)
    return target


def fake_report(checks: dict[str, tuple[str, float, str]], name: str = "x") -> Report:
    """A report with one check per id: {id: (status, points, output)}; x.9 checks are hidden."""
    return Report(
        submission=f"/home/teacher/cohort/{name}",
        spec="credit",
        stage=7,
        seed=987654321,
        isolation="test",
        checks=[
            CheckResult(
                cid,
                f"check {cid}",
                parse_check_id(cid)[0],
                points,
                status,
                output,
                hidden=cid.endswith(".9"),
            )
            for cid, (status, points, output) in checks.items()
        ],
    )
