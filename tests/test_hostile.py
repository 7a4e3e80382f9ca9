"""The grader against hostile submissions (tests/hostile/corpus.py): each case is graded by the
real CLI in a child process, then: the grader finished within the case's budget, the expected
checks failed with a message a student can act on, the other checks passed, host files are
unchanged (checksums before/after), and no process is left behind (process table before/after).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from hostile.corpus import CASES, SPOOF_LINES, Case, Context, rce_canaries
from service_tools import trained_step
from support import ROOT, data_env

from grader.sandbox import _bwrap

pytestmark = pytest.mark.slow

GRADE = Path(__file__).parent / "hostile" / "grade_budget.py"
TRAIN_SECONDS = 20
SANDBOXED = _bwrap() is not None


def checksums(*roots: Path) -> dict[str, str]:
    """sha256 of every file under roots (symlinks not followed)."""
    sums: dict[str, str] = {}
    for root in roots:
        paths = [root] if root.is_file() else sorted(root.rglob("*"))
        for path in paths:
            if path.is_file() and not path.is_symlink():
                sums[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return sums


def processes() -> dict[int, str]:
    """pid → 'uid cmdline' of every process."""
    table: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            uid = (entry / "status").read_text().split("\nUid:")[1].split()[0]
        except (OSError, IndexError):
            continue
        table[int(entry.name)] = f"{uid} {cmdline.strip()}"
    return table


def leftovers(before: dict[int, str], marker: str) -> list[str]:
    """Processes started since `before` that belong to a grading: sandboxed or grader's."""
    suspicious = ("bwrap", "uvicorn", "grader", "train.py", "setpriv", marker)
    found = []
    for pid, line in processes().items():
        if pid in before or pid == os.getpid():
            continue
        uid = line.split(" ", 1)[0]
        if uid == "65534" or any(word in line for word in suspicious):
            found.append(f"{pid}: {line[:200]}")
    return found


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return trained_step("04-pydantic", tmp_path_factory.mktemp("hostile-trained"))


def grade(
    folder: Path, out: Path, args: list[str]
) -> tuple[subprocess.CompletedProcess[str], float]:
    cmd = [sys.executable, str(GRADE), str(TRAIN_SECONDS), str(folder), "--spec", "churn"]
    cmd += ["--json", str(out / "results.json"), *args]
    start = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=data_env(), timeout=900, cwd=out)
    return proc, time.monotonic() - start


def by_id(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["name"].split()[0]: t for t in results["tests"]}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_submission(case: Case, trained: Path, tmp_path: Path) -> None:
    if case.needs_sandbox and not SANDBOXED:
        pytest.skip("needs bubblewrap: without it this bomb would only meet rlimits")
    marker = uuid.uuid4().hex[:12]
    ctx = Context(host=tmp_path / "host", out=tmp_path / "out", trained=trained, marker=marker)
    ctx.host.mkdir()
    ctx.out.mkdir()
    (ctx.host / "secret.txt").write_text(f"HOST-SECRET-{marker}\n")
    folder = tmp_path / "submissions" / case.folder_name
    case.build(folder, ctx)

    guarded = [ctx.host, folder, ROOT / "04-pydantic", ROOT / "grader"]
    sums = checksums(*guarded)
    table = processes()
    proc, seconds = grade(folder, ctx.out, case.args)
    time.sleep(0.5)
    left = leftovers(table, marker)
    output = proc.stdout + proc.stderr
    peak = re.search(r"GRADER-PEAK-RSS-KB (\d+)", proc.stderr)
    peak_mb = int(peak.group(1)) / 1024 if peak else float("nan")

    results_file = ctx.out / "results.json"
    assert results_file.is_file(), f"no results.json (exit {proc.returncode}):\n{output[-4000:]}"
    results = json.loads(results_file.read_text())
    checks = by_id(results)
    summary = ", ".join(f"{k} {v['status']}" for k, v in checks.items() if v["status"] != "skipped")
    print(
        f"\n{case.name}: {seconds:.1f} s, exit {proc.returncode}, "
        f"score {results['score']:g}/{results['max_score']:g}, grader peak {peak_mb:.0f} MB; "
        f"{summary}"
    )

    assert seconds < case.budget, f"grading took {seconds:.0f} s"
    assert proc.returncode in (0, 1), output[-4000:]
    assert "Traceback" not in proc.stdout, proc.stdout[-4000:]
    for check_id, hint in case.expect_failed.items():
        assert check_id in checks, f"check {check_id} missing: {summary}"
        check = checks[check_id]
        assert check["status"] == "failed", f"{check_id} should fail: {check}"
        assert check["output"].strip(), f"{check_id} failed without a message"
        assert hint in check["output"], f"{check_id}: {hint!r} not in {check['output']!r}"
    for check_id in case.expect_passed:
        assert checks.get(check_id, {}).get("status") == "passed", (
            f"{check_id} should pass: {checks.get(check_id)}\n{summary}"
        )
    assert checksums(*guarded) == sums, "files outside the sandbox changed"
    assert not left, f"processes left behind: {left}"
    for secret_place in (output, results_file.read_text()):
        assert f"HOST-SECRET-{marker}" not in secret_place, "a host file leaked into the report"
    assert not list(ctx.host.glob("escape*")), "the submission wrote outside its copy"
    assert not Path(f"/tmp/escape-{marker}.txt").exists()
    for canary in rce_canaries(ctx):
        assert not canary.exists(), f"the pickle's payload escaped: {canary}"
    if case.name == "spoofs-the-report":
        assert results["score"] < results["max_score"] / 2
        assert "999" not in proc.stdout.split("Total:")[-1]
        assert not any(line in proc.stdout for line in SPOOF_LINES[:2])
    if case.name == "output-flood-1GB":
        assert peak_mb < 1024, f"the grader's own memory reached {peak_mb:.0f} MB"
