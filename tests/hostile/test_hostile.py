"""The grader against hostile submissions (tests/hostile/corpus.py): each case is graded by the
real CLI in a child process, then: the grader finished within the case's budget, the expected
checks failed with a message a student can act on, the other checks passed, host files are
unchanged (checksums before/after), and no process is left behind (process table before/after).
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from grader.sandbox import bwrap_available
from tests.hostile.corpus import CASES, S1, Case, Context, rce_canaries
from tests.service_tools import trained_step
from tests.support import ROOT, data_env, selected, two_at_a_time

pytestmark = pytest.mark.slow

GRADE = Path(__file__).parent / "grade_budget.py"
TRAIN_SECONDS = 20
SYSTEM_FILES = [
    Path(p) for p in ("/etc/passwd", "/etc/hosts", "/etc/hostname") if Path(p).is_file()
]
SANDBOXED = bwrap_available() is not None


def checksums(*roots: Path) -> dict[str, str]:
    """sha256 of every file under roots (symlinks not followed)."""
    sums: dict[str, str] = {}
    for root in roots:
        paths = [root] if root.is_file() else sorted(root.rglob("*"))
        for path in paths:
            if path.is_file() and not path.is_symlink():
                sums[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return sums


def _stat(pid: str) -> tuple[int, str, int] | None:
    """(parent pid, start time, pid namespace) of a process, None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        fields = stat.rsplit(")", 1)[1].split()
        return int(fields[1]), fields[19], os.stat(f"/proc/{pid}/ns/pid").st_ino
    except (OSError, IndexError, ValueError):
        return None


SLACK = os.sysconf("SC_CLK_TCK") // 2  # a poll's interval and more, in clock ticks


def _ticks_now() -> int:
    """Now, in the unit of a process's start time in /proc/PID/stat (clock ticks since boot)."""
    uptime = float(Path("/proc/uptime").read_text().split()[0])
    return int(uptime * os.sysconf("SC_CLK_TCK")) + 1


def process_table() -> dict[int, tuple[int, str, int]]:
    table = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (info := _stat(entry)) is not None:
            table[int(entry)] = info
    return table


class Tracker:
    """The processes a grading starts: its descendants, and everything in their pid namespaces.

    Polled while the grader runs; afterwards, any of them still alive was left behind. (Other
    programs on the machine are not descendants and live in other namespaces: not counted.)
    """

    def __init__(self, root: int) -> None:
        self.root = root
        self.host_ns = os.stat("/proc/self/ns/pid").st_ino
        self.seen: set[tuple[int, str]] = set()
        # pid namespace -> when a tracked process was last seen in it (clock ticks): a process
        # that started later may be in a namespace that died and whose number was reused
        # (another grading running at the same time)
        self.namespaces: dict[int, int] = {}

    def poll(self) -> None:
        table = process_table()
        family = {self.root}
        changed = True
        while changed:
            changed = False
            for pid, (ppid, _, _) in table.items():
                if ppid in family and pid not in family:
                    family.add(pid)
                    changed = True
        now = _ticks_now()
        for pid in family - {self.root}:
            if pid in table:
                _, start, ns = table[pid]
                self.seen.add((pid, start))
                if ns != self.host_ns:
                    self.namespaces[ns] = now

    def alive(self, wait: float = 5.0) -> list[str]:
        """Tracked processes still there after `wait` s (a killed namespace takes a moment)."""
        # A namespace's inode number can be reused once it is gone: a process that started
        # after the grader ended is someone else's, whatever its namespace.
        ended = _ticks_now()
        deadline = time.monotonic() + wait
        while (left := self._alive(ended)) and time.monotonic() < deadline:
            time.sleep(0.2)
        return left

    def _alive(self, ended: int) -> list[str]:
        table = process_table()
        left = []
        for pid, (_, start, ns) in table.items():
            seen_in_ns = self.namespaces.get(ns)
            recent = seen_in_ns is not None and int(start) <= min(ended, seen_in_ns + SLACK)
            ours = (pid, start) in self.seen or recent
            if ours:
                try:
                    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
                except OSError:
                    continue
                left.append(f"{pid}: {cmdline.decode(errors='replace')[:200]}")
        return left


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Step 04 trained, with model.bin beside its pipeline.bin: the honest base hands in both
    pickles, as the homework asks (the lesson's train.py writes pipeline.bin only)."""
    folder = trained_step("04-pydantic", tmp_path_factory.mktemp("hostile-trained"))
    with (folder / "pipeline.bin").open("rb") as f:
        dv, model = pickle.load(f).named_steps.values()
    with (folder / "model.bin").open("wb") as f:
        pickle.dump((dv, model), f)
    return folder


def grade(folder: Path, out: Path, args: list[str]) -> tuple[int, str, str, float, list[str]]:
    """Grade folder with the real CLI; (exit code, stdout, stderr, seconds, processes left)."""
    cmd = [sys.executable, str(GRADE), str(TRAIN_SECONDS), str(folder), "--spec", "churn"]
    cmd += ["--json", str(out / "results.json"), *args]
    start = time.monotonic()
    with (out / "stdout.txt").open("w+") as stdout, (out / "stderr.txt").open("w+") as stderr:
        proc = subprocess.Popen(cmd, stdout=stdout, stderr=stderr, env=data_env(), cwd=out)
        tracker = Tracker(proc.pid)
        while proc.poll() is None:
            tracker.poll()
            if time.monotonic() - start > 900:
                proc.kill()
            time.sleep(0.2)
        seconds = time.monotonic() - start
        left = tracker.alive()
        stdout.seek(0)
        stderr.seek(0)
        return proc.returncode, stdout.read(), stderr.read(), seconds, left


def by_id(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["number"]: t for t in results["tests"]}


def _param(case: Case) -> Any:
    marks = [pytest.mark.xfail(strict=True, reason=case.xfail)] if case.xfail else []
    return pytest.param(case, id=case.name, marks=marks)


PARAMS = [_param(c) for c in CASES]


@dataclass
class Graded:
    """One case, graded: what was guarded (with its checksums before) and what the grader did."""

    ctx: Context
    guarded: list[Path]
    sums: dict[str, str]
    code: int
    stdout: str
    stderr: str
    seconds: float
    left: list[str]


def grade_case(case: Case, trained: Path, tmp_path: Path) -> Graded:
    marker = uuid.uuid4().hex[:12]
    ctx = Context(host=tmp_path / "host", out=tmp_path / "out", trained=trained, marker=marker)
    ctx.host.mkdir()
    ctx.out.mkdir()
    (ctx.host / "secret.txt").write_text(f"HOST-SECRET-{marker}\n")
    folder = tmp_path / "submissions" / case.folder_name
    case.build(folder, ctx)
    # The host folder with its secret, the submitted folder itself, the trained copy it came
    # from, and system files (the grader's own tree is not here: it is being worked on).
    guarded = [ctx.host, folder, trained, *SYSTEM_FILES]
    sums = checksums(*guarded)
    return Graded(ctx, guarded, sums, *grade(folder, ctx.out, case.args))


@pytest.fixture(scope="module")
def corpus(
    request: pytest.FixtureRequest, trained: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Graded]:
    """The selected cases, graded two at a time (as `grade batch --jobs 2` grades a cohort):
    each grading is tracked on its own, and a case must hold next to another."""
    cases = [c for c in selected(request, "case") if SANDBOXED or not c.needs_sandbox]
    by_name = {c.name: c for c in cases}
    folders = {name: tmp_path_factory.mktemp(name) for name in by_name}
    return two_at_a_time(lambda name: grade_case(by_name[name], trained, folders[name]), by_name)


@pytest.mark.parametrize("case", PARAMS)
def test_hostile_submission(case: Case, corpus: dict[str, Graded]) -> None:
    if case.needs_sandbox and not SANDBOXED:
        pytest.skip("needs bubblewrap: without it this bomb would only meet rlimits")
    graded = corpus[case.name]
    ctx, guarded, sums = graded.ctx, graded.guarded, graded.sums
    code, stdout, stderr = graded.code, graded.stdout, graded.stderr
    seconds, left = graded.seconds, graded.left
    output = stdout + stderr
    peak = re.search(r"GRADER-PEAK-RSS-KB (\d+)", stderr)
    peak_mb = int(peak.group(1)) / 1024 if peak else float("nan")

    results_file = ctx.out / "results.json"
    assert results_file.is_file(), f"no results.json (exit {code}):\n{output[-4000:]}"
    results = json.loads(results_file.read_text())
    checks = by_id(results)
    summary = ", ".join(f"{k} {v['status']}" for k, v in checks.items() if "status" in v)
    print(
        f"\n{case.name}: {seconds:.1f} s, exit {code}, "
        f"score {results['score']:g}/{results['extra_data']['max_score']:g}, grader peak "
        f"{peak_mb:.0f} MB; "
        f"{summary}"
    )

    assert seconds < case.budget, f"grading took {seconds:.0f} s"
    assert code in (0, 1), output[-4000:]
    # The student's own traceback in the feedback is useful; the grader's own is a grader bug.
    assert f'File "{ROOT / "grader"}' not in stdout, stdout[-4000:]
    assert "INTERNALERROR" not in output and "could not complete this check" not in stdout
    for check_id, hint in case.expect_failed.items():
        assert check_id in checks, f"check {check_id} missing: {summary}"
        check = checks[check_id]
        assert check.get("status") == "failed", f"{check_id} should fail: {check}"
        assert check["output"].strip(), f"{check_id} failed without a message"
        assert hint in check["output"], f"{check_id}: {hint!r} not in {check['output']!r}"
    for check_id in case.expect_passed:
        assert checks.get(check_id, {}).get("status") == "passed", (
            f"{check_id} should pass: {checks.get(check_id)}\n{summary}"
        )
    assert checksums(*guarded) == sums, "files outside the sandbox changed"
    assert not left, f"processes left behind: {left}"
    for secret_place in (output, results_file.read_text()):
        assert f"HOST-SECRET-{ctx.marker}" not in secret_place, "a host file leaked into the report"
    assert not list(ctx.host.glob("escape*")), "the submission wrote outside its copy"
    assert not Path(f"/tmp/escape-{ctx.marker}.txt").exists()
    for canary in rce_canaries(ctx):
        assert not canary.exists(), f"the pickle's payload escaped: {canary}"
    if case.name == "spoofs-the-report":
        assert results["score"] < results["extra_data"]["max_score"] / 2
        # The student's prints may be quoted, indented, in the feedback; the report's own
        # total is the last line that starts with "Total:".
        totals = [line for line in stdout.splitlines() if line.startswith("Total:")]
        maximum = results["extra_data"]["max_score"]
        assert totals[-1] == f"Total: {results['score']:g}/{maximum:g}", totals
        assert all(line.startswith(" ") for line in stdout.splitlines() if "999" in line)
    if case.name == "output-flood-1GB":
        assert peak_mb < 1024, f"the grader's own memory reached {peak_mb:.0f} MB"


@pytest.mark.skipif(not SANDBOXED, reason="needs bubblewrap (the bomb relies on its limits)")
def test_fork_bomb_does_not_harm_a_student_graded_at_the_same_time(
    trained: Path, tmp_path: Path
) -> None:
    """Batch grading runs students in parallel: one student's bomb must not cost another."""
    cases = {c.name: c for c in CASES}
    runs: dict[str, tuple[Path, Path]] = {}
    for name in ("fork-bomb", "honest"):
        ctx = Context(tmp_path / name / "host", tmp_path / name / "out", trained, name)
        ctx.host.mkdir(parents=True)
        ctx.out.mkdir(parents=True)
        folder = tmp_path / name / "student"
        cases[name].build(folder, ctx)
        runs[name] = folder, ctx.out
    folder, out = runs["fork-bomb"]
    cmd = [sys.executable, str(GRADE), "60", str(folder), "--spec", "churn", *S1]
    with (out / "bomb.txt").open("w") as log:
        bomb = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=data_env())
        tracker = Tracker(bomb.pid)
        try:
            time.sleep(8)  # the bomb is at its limit now, for the next ~50 s
            tracker.poll()
            folder, out = runs["honest"]
            _, _, _, _, left = grade(folder, out, cases["honest"].args)
            tracker.poll()
            bomb_running = bomb.poll() is None
        finally:
            bomb.kill()  # its grader killed, as `grade batch --timeout` does: the bomb goes too
            bomb.wait(timeout=60)
        bomb_left = tracker.alive(wait=20)
    results = json.loads((out / "results.json").read_text())
    maximum = results["extra_data"]["max_score"]
    print(f"\nhonest next to a fork bomb: {results['score']:g}/{maximum:g}")
    assert bomb_running, "the bomb ended before the honest grading did: test proves nothing"
    failed = [t["name"] for t in results["tests"] if t.get("status") == "failed"]
    assert not failed, f"the honest student lost points to the other's fork bomb: {failed}"
    assert not left
    assert not bomb_left, f"the bomb outlived its killed grader: {bomb_left[:5]}"
