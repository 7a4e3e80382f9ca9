"""The grader's side of the probe process (grader/probes/probe.py): start it in the sandbox,
send its three messages, read its result."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from grader.environment.trust import Trusted
from grader.sandbox import Limits, Process, RunResult, Sandbox

PROBES = Path(__file__).resolve().parent.parent / "probes"
MODEL_SECONDS = 180.0  # loading and scoring the pickles
RESULT_MARK = "GRADER-RESULT"


def start(
    sandbox: Sandbox, python: str, trusted: Trusted, env: dict[str, str], seconds: float
) -> Process:
    """probe.py in the sandbox, without site processing (no `.pth` file, no `sitecustomize`),
    importing from the environment only the modules `trusted` lists; it imports its libraries,
    then waits for its request (it may live `seconds` in all)."""
    modules = ",".join(trusted.modules)
    command = [
        python,
        "-I",
        "-S",
        str(PROBES / "probe.py"),
        "--site",
        str(trusted.site),
        "--modules",
        modules,
    ]
    return sandbox.start(command, Limits(wall_seconds=seconds), env, stdin=True, result_fd=True)


def ask(
    process: Process,
    nonce: str,
    server: list[str] | None,
    model: dict[str, Any] | None,
    http: dict[str, Any] | None,
) -> tuple[dict[str, Any], RunResult]:
    """Send the three messages (probe.py): the server's command line, then the records to
    score, then the nonce and the HTTP requests; each part reaches no process that runs student
    code before that code started. The result, and how the probe ended."""
    first: dict[str, Any] = {"server": {"argv": server}} if server is not None else {}
    second: dict[str, Any] = {}
    if model is not None:
        second = {"model": model, "model_seconds": MODEL_SECONDS}
    third: dict[str, Any] = {"nonce": nonce}
    if http is not None:
        third["http"] = http
    messages = [json.dumps(m) for m in (first, second, third)]
    run = process.wait("".join(f"{len(m.encode())}\n{m}" for m in messages))
    return result(run, nonce) or {}, run


def result(run: RunResult, nonce: str) -> dict[str, Any] | None:
    """The JSON the probe wrote as `GRADER-RESULT <nonce> {json}` to its result descriptor."""
    prefix = f"{RESULT_MARK} {nonce} "
    for line in (run.result_text or "").splitlines():
        if line.startswith(prefix):
            try:
                value = json.loads(line[len(prefix) :])
            except ValueError:
                return None
            return value if isinstance(value, dict) else None
    return None
