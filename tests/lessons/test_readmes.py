"""Executable READMEs: every shell block of every README runs, and printed figures are rechecked.

Each README runs in a scratch copy of the repository, from its own folder, with the datasets
from ../shared/data (CHURN_DATA, CREDIT_DATA). See readme_blocks.py for the markers.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.readme_blocks import Block, diff_blocks, diff_problems, missing_lines, parse
from tests.support import ROOT, data_env, port_is_free, stop, wait_http

READMES = sorted(
    p.relative_to(ROOT)
    for p in ROOT.rglob("README.md")
    if not any(
        part.startswith(".") or part in {"node_modules"} for part in p.relative_to(ROOT).parts
    )
)
BLOCK_TIMEOUT = 900
IGNORE = shutil.ignore_patterns(
    ".git", ".venv", "__pycache__", "*.bin", ".pytest_cache", ".ruff_cache"
)

# Figures reported at the end of the session (see conftest.pytest_terminal_summary).
SUMMARY: dict[str, dict[str, int]] = {}


def readme_env(tmp_path: Path) -> dict[str, str]:
    """The datasets, a TMPDIR of the test's own (a README's `mktemp -d` lands there), and the
    uv binary first on PATH: a pyenv shim finds no Python version in a folder outside the
    repository, where a README may create a project (05's `uv init`)."""
    from grader.environment import real_uv

    env = data_env()
    (tmp_path / "tmp").mkdir(exist_ok=True)
    env["TMPDIR"] = str(tmp_path / "tmp")
    uv = real_uv()
    if uv is not None:
        (tmp_path / "bin").mkdir(exist_ok=True)
        (tmp_path / "bin" / "uv").symlink_to(uv)
        env["PATH"] = f"{tmp_path / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return env


def uses_docker(block: Block) -> bool:
    return any(
        line.split()[:1] == ["docker"] or " docker " in f" {line} "
        for line in block.code.splitlines()
    )


def run_block(block: Block, cwd: Path, env: dict[str, str]) -> str:
    result = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", block.code],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=BLOCK_TIMEOUT,
    )
    if result.returncode != 0:
        raise AssertionError(
            f"{block.where}: exit {result.returncode}\n$ {block.code}\n"
            f"--- stdout ---\n{result.stdout[-3000:]}\n--- stderr ---\n{result.stderr[-3000:]}"
        )
    return result.stdout + "\n" + result.stderr


def test_markers_have_reasons() -> None:
    for readme in READMES:
        for block in parse(ROOT / readme):
            if block.marker == "skip":
                assert block.marker_arg.startswith("(") and len(block.marker_arg) > 4, (
                    f"{readme}:{block.line}: a skipped block must say why: "
                    "<!-- readme-test: skip (reason) -->"
                )
            if block.marker == "server":
                assert block.marker_arg.startswith("http"), f"{readme}:{block.line}: server URL"


def test_diffs_shown_are_the_real_change() -> None:
    """A README's ```diff blocks are parts of the real `diff -u`, and together show all of it."""
    problems = [p for readme in READMES for p in diff_problems(ROOT, ROOT / readme)]
    assert not problems, "\n".join(problems)
    shown = {(b.old, b.new) for readme in READMES for b in diff_blocks(ROOT / readme)}
    assert ("03-fastapi/predict.py", "04-pydantic/predict.py") in shown
    assert ("07-flyio/predict.py", "08-hardening/predict.py") in shown


@pytest.mark.slow
@pytest.mark.parametrize("readme", READMES, ids=[str(r) for r in READMES])
def test_readme_runs(readme: Path, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    blocks = parse(ROOT / readme)
    stats = SUMMARY.setdefault(str(readme), {"run": 0, "skipped": 0, "outputs_checked": 0})
    if not blocks:
        return
    repo = tmp_path / "repo"
    shutil.copytree(ROOT, repo, ignore=IGNORE)
    cwd = repo / readme.parent
    env = readme_env(tmp_path)
    if any(
        (uses_docker(b) and b.marker is None) or (b.marker == "server" and uses_docker(b))
        for b in blocks
    ):
        request.getfixturevalue("docker_engine")  # the commands as typed, with Docker
    servers: list[subprocess.Popen[bytes]] = []
    try:
        for block in blocks:
            if block.marker in {"skip", "suite"}:
                stats["skipped"] += 1
                continue
            if block.marker == "server":
                url = block.marker_arg
                port = int(url.rsplit(":", 1)[1].split("/")[0])
                assert port_is_free(port), f"port {port} is busy: stop what listens there first"
                log = (tmp_path / f"server-{block.line}.log").open("wb")
                proc = subprocess.Popen(
                    ["bash", "-e", "-c", block.code.strip()],
                    cwd=cwd,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
                servers.append(proc)
                try:
                    wait_http(url, timeout=180, proc=proc)
                except AssertionError as e:
                    log.flush()
                    tail = (tmp_path / f"server-{block.line}.log").read_text(errors="replace")
                    raise AssertionError(f"{block.where}: {e}\n{tail[-3000:]}") from None
                stats["run"] += 1
                continue
            output = run_block(block, cwd, env)
            stats["run"] += 1
            if block.expected is not None:
                missing = missing_lines(block.expected, output)
                assert missing is None, (
                    f"{block.where}: the README shows output that the command no longer prints.\n"
                    f"$ {block.code}\n--- expected (README) ---\n{missing}\n"
                    f"--- printed ---\n{output[-3000:]}"
                )
                stats["outputs_checked"] += 1
    finally:
        for proc in servers:
            stop(proc)
