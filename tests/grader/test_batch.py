"""Batch grading: a generated cohort graded in parallel matches grading each one alone; an
interrupted batch (a real SIGINT, as Ctrl-C sends) records no grade and resumes; two shards
merged give the same gradebook; the gradebook, the feedback and the cohort report are built
from the one results model, `grader.results.report.Report`.

The cohort (10 students) mixes full solutions, partial and broken work. Identical submissions
are still graded separately by the batch; only the "graded alone" reference is computed once per
distinct variant. Stage 6 runs its static checks only (`--engine none`): CI time.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from grader.batch import gradebook as book
from grader.batch import runner
from grader.results.report import (
    Report,
)
from tests.support import ROOT, data_env, two_at_a_time, where_no_sandbox

SOLUTIONS, HOMEWORK = ROOT / "solutions", ROOT / "homework"
IGNORE = shutil.ignore_patterns("*.bin", ".venv", "__pycache__", ".server.log")
GRADE_ARGS = ["--spec", "credit", "--stage", "all", "--engine", "none"]
BATCH_ARGS = where_no_sandbox(["--spec", "credit", "--engine", "none"], Path("."))


# -- slow: Ctrl-C -------------------------------------------------------------------------------
def report_json(out: Path, name: str) -> Path:
    return out / "students" / name / "report.json"


@pytest.mark.slow
def test_ctrl_c_records_no_grade_and_resume_grades_the_rest(tmp_path: Path) -> None:
    """SIGINT to the batch's process group (what Ctrl-C in a terminal sends) while two students
    are being graded: they get no file at all, --resume grades them, the gradebook has the
    run's stage columns only."""
    cohort_dir, out = tmp_path / "cohort", tmp_path / "out"
    for name in ("a-fast", "b-fast", "c-slow", "d-slow"):
        (cohort_dir / name).mkdir(parents=True)
        code = "import time; time.sleep(120)\n" if "slow" in name else "raise SystemExit(1)\n"
        (cohort_dir / name / "train.py").write_text(code)
    cmd = [sys.executable, "-m", "grader.cli", "batch", str(cohort_dir), "--jobs", "2"]
    cmd += ["--out", str(out), "--only", "1", *BATCH_ARGS]
    env = {k: v for k, v in data_env().items() if k != "FORCE_COLOR"}
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=env,
        start_new_session=True,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 300
    slow = [out / "students" / n for n in ("c-slow", "d-slow")]
    while not all(report_json(out, n).is_file() for n in ("a-fast", "b-fast")) or not all(
        any(folder.glob("grade-*")) for folder in slow
    ):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the batch made no progress"
        time.sleep(0.2)
    time.sleep(3)  # the slow students' train.py is running in the sandbox
    os.killpg(proc.pid, signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    for folder in slow:
        assert sorted(p.name for p in folder.iterdir()) == [], "an interrupted student was written"
    assert not (out / "gradebook.csv").exists()

    for folder in slow:  # now quick to grade
        (cohort_dir / folder.name / "train.py").write_text("raise SystemExit(1)\n")
    resumed = subprocess.run(
        [*cmd, "--resume"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "2 already graded, 2 left" in resumed.stderr
    with (out / "gradebook.csv").open(encoding="utf-8-sig") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["student_id", "folder", "1 train", "total", "max", "status"], rows[0]
    assert [row[1] for row in rows[1:]] == ["a-fast", "b-fast", "c-slow", "d-slow"]
    assert len({row[-2] for row in rows[1:]}) == 1, "max differs between students"
    assert all(row[-1] == "graded" for row in rows[1:]), rows


def grader_child(batch_pid: int) -> int | None:
    """The pid of the batch's `grader.cli` child, once it runs."""
    for proc in Path("/proc").iterdir():
        try:
            stat = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            if int(stat[1]) == batch_pid and b"grader.cli" in (proc / "cmdline").read_bytes():
                return int(proc.name)
        except (OSError, ValueError, IndexError):
            continue
    return None


@pytest.mark.slow
@pytest.mark.parametrize("delay", [0.3, 5.0], ids=["while-starting", "while-grading"])
def test_sigint_that_reaches_the_child_first_records_no_grade(tmp_path: Path, delay: float) -> None:
    """SIGINT to the student's grader only (in a terminal it can reach the child before the
    batch): before, the student was written as 0/0 ("the grader was stopped after 0 s", or
    "every graded check passed" from a cut-short run) and --resume kept it."""
    cohort_dir, out = tmp_path / "cohort", tmp_path / "out"
    (cohort_dir / "slow").mkdir(parents=True)
    (cohort_dir / "slow" / "train.py").write_text("import time; time.sleep(120)\n")
    cmd = [sys.executable, "-m", "grader.cli", "batch", str(cohort_dir), "--jobs", "1"]
    cmd += ["--out", str(out), "--only", "1", *BATCH_ARGS]
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=data_env(),
        start_new_session=True,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    while (child := grader_child(proc.pid)) is None:
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    time.sleep(delay)
    os.kill(child, signal.SIGINT)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 130, stderr
    assert "slow: interrupted, not recorded" in stderr
    assert sorted(p.name for p in (out / "students" / "slow").iterdir()) == []


@pytest.mark.slow
def test_nested_upload_is_graded_in_batch(tmp_path: Path) -> None:
    """A folder holding credit-card-hw/ plus __MACOSX/ scores what the same work scores alone,
    and the cohort report lists it."""
    cohort_dir, out = tmp_path / "cohort", tmp_path / "out"
    upload = cohort_dir / "zipped"
    shutil.copytree(SOLUTIONS, upload / "credit-card-hw", ignore=IGNORE)
    (upload / "__MACOSX" / "credit-card-hw").mkdir(parents=True)
    (upload / "__MACOSX" / "credit-card-hw" / "._train.py").write_bytes(b"\0\5\26\7")
    shutil.copytree(SOLUTIONS, cohort_dir / "plain", ignore=IGNORE)
    run = run_batch(str(cohort_dir), "--jobs", "2", "--out", str(out), "--only", "1,2", *BATCH_ARGS)
    assert run.returncode == 0, run.stderr
    reports = runner.collect(out)
    assert reports["zipped"].score == reports["plain"].score > 0
    assert reports["zipped"].root == "credit-card-hw"
    feedback = (out / "students" / "zipped" / "feedback.md").read_text()
    assert "Graded the folder credit-card-hw/ of your upload" in feedback
    assert "- zipped: Graded the folder credit-card-hw/" in (out / "report.md").read_text()


# -- slow: a real cohort ------------------------------------------------------------------------
def variant(name: str, dest: Path) -> None:
    """One kind of submission, written to dest."""
    if name == "empty":
        dest.mkdir()
        (dest / "notes.txt").write_text("I will do it later\n")
        return
    if name == "starter":
        shutil.copytree(HOMEWORK, dest, ignore=IGNORE)
        return
    shutil.copytree(SOLUTIONS, dest, ignore=IGNORE)
    if name == "solution":
        return
    if name == "unanswered":  # all the work, the answers file left as the template
        shutil.copy(HOMEWORK / "answers.toml", dest / "answers.toml")
    elif name == "dict-service":  # stage 3 done, stage 4 not: no Pydantic model
        text = (dest / "predict.py").read_text()
        (dest / "predict.py").write_text(
            text.replace("client: Client", "client: dict").replace(
                "[client.model_dump()]", "[client]"
            )
        )
    elif name == "broken-train":
        (dest / "train.py").write_text("raise RuntimeError('I forgot to finish this')\n")
    elif name == "train-only":  # stages 1-2 done, the rest is the starter
        for file in ("predict.py", "Dockerfile", "answers.toml"):
            shutil.copy(HOMEWORK / file, dest / file)
        for file in ("pyproject.toml", "uv.lock", ".python-version", ".dockerignore", "fly.toml"):
            (dest / file).unlink()
    else:
        raise ValueError(name)


COHORT = {
    "solution": 2,
    "unanswered": 1,
    "dict-service": 1,
    "starter": 2,
    "broken-train": 1,
    "empty": 2,
    "train-only": 1,
}


def make_cohort(root: Path) -> dict[str, str]:
    """Write the cohort; return {student: variant}."""
    students: dict[str, str] = {}
    root.mkdir()
    n = 0
    for kind, count in COHORT.items():
        for _ in range(count):
            n += 1
            name = f"student-{n:02d}-{kind}"
            variant(kind, root / name)
            students[name] = kind
    return students


def run_batch(*args: str, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "grader.cli", "batch", *args]
    return subprocess.run(
        cmd, cwd=ROOT, env=data_env(), capture_output=True, text=True, timeout=timeout, check=False
    )


def gradebook(out: Path) -> list[list[str]]:
    with (out / "gradebook.csv").open(encoding="utf-8-sig") as f:
        return list(csv.reader(f))


def differences(out: Path, alone: dict[str, Report], students: dict[str, str]) -> str:
    """For a failed comparison: each check whose status differs from the graded-alone run."""
    lines = []
    reports = runner.collect(out)
    for name, kind in students.items():
        if name not in reports:
            continue
        got = {c.id: c for c in reports[name].checks}
        for c in alone[kind].checks:
            other = got.get(c.id)
            if other is None or other.status != c.status:
                output = other.output[:500] if other else ""
                lines.append(
                    f"{name} {c.id}: alone {c.status}, batch "
                    f"{other.status if other else None}: {output}"
                )
    return "\n".join(lines)


def finished(out: Path) -> int:
    return len(list((out / "students").glob("*/report.json")))


@pytest.fixture(scope="module")
def alone(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Report]:
    """Each distinct variant graded alone with the one-submission CLI (two at a time)."""
    root = tmp_path_factory.mktemp("alone")

    def one(kind: str) -> Report:
        variant(kind, root / kind)
        report = root / f"{kind}.json"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "grader.cli",
                str(root / kind),
                *GRADE_ARGS,
                "--quiet",
                "--report",
                str(report),
            ],
            cwd=ROOT,
            env=data_env(),
            capture_output=True,
            timeout=900,
            check=False,
        )
        return Report.from_json(json.loads(report.read_text()))

    return two_at_a_time(one, COHORT)


@pytest.mark.slow
def test_batch_matches_alone_and_resumes_after_a_kill(
    tmp_path: Path, alone: dict[str, Report]
) -> None:
    students = make_cohort(tmp_path / "cohort")
    assert len(students) >= 10
    expected_header, expected_rows = book.gradebook_rows(
        {name: alone[kind] for name, kind in students.items()}, range(1, 8)
    )
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "grader.cli", "batch", str(tmp_path / "cohort"), "--jobs", "2"]
    cmd += ["--out", str(out), *BATCH_ARGS]
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=data_env(),
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 1200
    while finished(out) < len(students) // 2 and proc.poll() is None:
        assert time.monotonic() < deadline, "the batch made no progress"
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)  # the batch and its graders, mid-flight
    proc.wait()
    done_before = finished(out)
    assert 0 < done_before < len(students), "the batch was not killed half-way"
    assert not (out / "gradebook.csv").exists()
    # Two machines each get a copy of the interrupted output and resume one shard of it.
    shard_outs = [tmp_path / "shard-1", tmp_path / "shard-2"]
    for shard_out in shard_outs:
        shutil.copytree(out, shard_out)

    resumed = run_batch(
        str(tmp_path / "cohort"), "--jobs", "2", "--out", str(out), "--resume", *BATCH_ARGS
    )
    assert resumed.returncode == 0, resumed.stderr
    assert f"{done_before} already graded" in resumed.stderr
    rows = gradebook(out)
    assert rows[0] == expected_header
    assert rows[1:] == expected_rows, differences(out, alone, students)
    report = (out / "report.md").read_text()
    assert f"{len(students)} students" in report
    for name in students:
        assert (out / "students" / name / "feedback.md").is_file()
        results = json.loads((out / "students" / name / "results.json").read_text())
        assert results["score"] == alone[students[name]].score

    # The two shards, resumed apart and merged, give the same gradebook.
    for i, shard_out in enumerate(shard_outs, start=1):
        run = run_batch(
            str(tmp_path / "cohort"),
            "--jobs",
            "2",
            "--out",
            str(shard_out),
            "--shard",
            f"{i}/2",
            "--resume",
            *BATCH_ARGS,
        )
        assert run.returncode == 0, run.stderr
        assert ", 0 left;" not in run.stderr, "each shard should have had students left to grade"
    merged = tmp_path / "merged"
    run = run_batch("--merge", *map(str, shard_outs), "--out", str(merged))
    assert run.returncode == 0, run.stderr
    assert gradebook(merged) == rows, differences(merged, alone, students)
