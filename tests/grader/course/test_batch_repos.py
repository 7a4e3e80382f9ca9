"""End to end: `grade batch --repos FORM --deadline …` on real repositories served by a local
`git http-backend`: a commit before and one after the deadline, a force-push, a huge file, a
missing, a private and an empty repository, a late student under a late policy; then an
overrides file applied on a resume, the Canvas layout, and the audit in the report."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from grader.batch.course import TEST_ONLY_LOOPBACK
from tests.grader.course.conftest import GitServer
from tests.grader.course.test_repos import BEFORE, DEADLINE
from tests.support import ROOT, data_env

SOLUTION = {
    p.name: p.read_text()
    for p in (ROOT / "solutions").iterdir()
    if p.is_file() and p.suffix in (".py", ".toml", ".lock", "") and p.name != "Dockerfile"
}
BROKEN = {"train.py": "raise SystemExit('not finished')\n"}


def batch(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "grader.cli", "batch", *args]
    return subprocess.run(
        cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900, check=False
    )


def gradebook(out: Path) -> dict[str, dict[str, str]]:
    with (out / "gradebook.csv").open(encoding="utf-8-sig") as f:
        return {row["folder"]: row for row in csv.DictReader(f)}


@pytest.mark.slow
def test_grading_a_cohort_from_its_repositories(git_server: GitServer, tmp_path: Path) -> None:
    # ana's second commit is after the deadline and the late window: never graded
    git_server.repo("ana/hw", [(BEFORE, SOLUTION), (DEADLINE + timedelta(days=10), BROKEN)])
    git_server.repo("ben/hw", [(BEFORE, BROKEN)])
    git_server.push("ben/hw", [(BEFORE + timedelta(hours=2), SOLUTION)], force=True)
    git_server.repo("cy/hw", [(BEFORE, {**BROKEN, "data.bin": os.urandom(8 * 10**6)})])
    git_server.repo("private/eve/hw", [(BEFORE, SOLUTION)])
    git_server.repo("fay/hw", [])
    git_server.repo("gus/hw", [(DEADLINE + timedelta(hours=30), BROKEN)])
    form = tmp_path / "form.csv"
    rows = [
        ("ana", "ana/hw"),
        ("ben", "ben/hw"),
        ("cy", "cy/hw"),
        ("dee", "dee/hw"),
        ("eve", "private/eve/hw"),
        ("fay", "fay/hw"),
        ("gus", "gus/hw"),
    ]
    form.write_text("student,repository\n" + "".join(f"{s},{git_server.url(r)}\n" for s, r in rows))
    out = tmp_path / "out"
    env = {**data_env(), TEST_ONLY_LOOPBACK: "1", "XDG_CONFIG_HOME": str(tmp_path / "config")}
    args = [
        "--repos",
        str(form),
        "--deadline",
        DEADLINE.isoformat(),
        "--out",
        str(out),
        "--only",
        "1",
        "--engine",
        "none",
        "--jobs",
        "2",
        "--seed",
        "4242",
        "--late",
        "grace=1h,per-day=10,cap=50,max-days=3",
        "--clone-max-mb",
        "5",
    ]
    run = batch(*args, env=env)
    assert run.returncode == 0, run.stderr
    book = gradebook(out)
    assert sorted(book) == ["ana", "ben", "cy", "dee", "eve", "fay", "gus"], book
    assert float(book["ana"]["total"]) > 0 and float(book["ben"]["total"]) > 0
    assert book["ana"]["committed_at"].startswith(BEFORE.isoformat()[:19])
    assert len(book["ana"]["commit"]) == 40 and book["ana"]["repository"].endswith("ana/hw.git")
    for name, why in (
        ("cy", "larger than 5 MB"),
        ("dee", "404"),
        ("eve", "private"),
        ("fay", "empty"),
    ):
        assert book[name]["status"] == "no submission" and why in book[name]["note"], book[name]
    assert book["gus"]["status"] == "graded" and book["gus"]["days_late"] == "2"
    assert not (out / "checkouts" / "ana" / ".git").exists()
    feedback = (out / "students" / "ana" / "feedback.md").read_text()
    assert "ana/hw.git at commit" in feedback and book["ana"]["commit"][:12] in feedback
    report = (out / "report.md").read_text()
    assert "## Intake from the students' repositories" in report and "## Audit" in report
    assert "4242" not in report and "4242" not in (out / "batch.json").read_text()
    assert "test-only loopback switch was on" in report

    # A TA's override, applied on a resume (nothing is regraded) and kept afterwards.
    overrides = tmp_path / "overrides.csv"
    overrides.write_text("student,check,points,reason\nben,1.1,0,copied train.py from ana\n")
    again = batch(*args, "--resume", "--overrides", str(overrides), env=env)
    assert again.returncode == 0, again.stderr
    assert "3 already graded" in again.stderr, "a resume regrades nobody (it retries intake)"
    ben = gradebook(out)["ben"]
    assert float(ben["total"]) == float(book["ben"]["total"]) - 2
    assert ben["note"] == "1 manual override(s)"
    assert "copied train.py from ana" in (out / "students" / "ben" / "feedback.md").read_text()
    third = batch(*args, "--resume", env=env)  # no --overrides: the recorded file still applies
    assert third.returncode == 0 and gradebook(out)["ben"]["total"] == ben["total"]
    other_seed = batch(*[a if a != "4242" else "7" for a in args], "--resume", env=env)
    assert other_seed.returncode == 2 and "another seed" in other_seed.stderr
    stamp = json.loads((out / "students" / "ana" / "audit.json").read_text())
    assert stamp["seed_fingerprint"] not in ("", "4242") and stamp["grader_commit"]
    shutil.rmtree(out / "checkouts")
