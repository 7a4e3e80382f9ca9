"""Batch grading: a generated cohort graded in parallel matches grading each one alone; an
interrupted batch resumes to the same gradebook; two shards merged give the same gradebook.
(To keep CI short, the shards resume copies of the interrupted output: together they grade
the other half of the cohort once more, each shard its own students.)

The cohort (20 students) mixes full solutions, partial and broken work. Identical submissions
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
from typing import Any

import pytest
from grader_helpers import grade
from support import ROOT, data_env

from grader import batch, cohort

SOLUTIONS, HOMEWORK = ROOT / "solutions", ROOT / "homework"
IGNORE = shutil.ignore_patterns("*.bin", ".venv", "__pycache__", ".server.log")
GRADE_ARGS = ["--spec", "credit", "--stage", "all", "--engine", "none"]
BATCH_ARGS = ["--spec", "credit", "--engine", "none"]


# -- fast: the pieces ---------------------------------------------------------------------------
def fake_results(scores: dict[str, tuple[float, float, str]]) -> dict[str, Any]:
    """results.json with one test per id: {id: (score, max, output)}."""
    tests = [
        {
            "name": f"{cid} check {cid}",
            "score": s,
            "max_score": m,
            "status": "passed" if s == m else "failed",
            "output": out,
            "visibility": "after_published" if cid.endswith(".9") else "visible",
            "extra_data": {"stage": int(cid.split(".")[0])},
        }
        for cid, (s, m, out) in scores.items()
    ]
    return {
        "score": sum(t["score"] for t in tests),
        "max_score": sum(t["max_score"] for t in tests),
        "tests": tests,
    }


def test_parse_shard() -> None:
    assert batch.parse_shard("2/4") == (2, 4)
    for bad in ("0/2", "3/2", "1", "a/b"):
        with pytest.raises(Exception, match="shard"):
            batch.parse_shard(bad)


def test_shards_partition_the_cohort(tmp_path: Path) -> None:
    names = [tmp_path / f"s{i:02d}" for i in range(11)]
    parts = [batch.shard_of(names, (i, 3)) for i in (1, 2, 3)]
    assert sorted(p for part in parts for p in part) == names
    assert max(map(len, parts)) - min(map(len, parts)) <= 1


def test_stage_scores_feedback_and_gradebook(tmp_path: Path) -> None:
    alice = fake_results({"1.1": (2, 2, ""), "1.9": (0, 1, "secret record"), "3.2": (0, 1, "no")})
    bob = fake_results({"1.1": (0, 2, "train.py crashed"), "3.2": (1, 1, "")})
    assert batch.stage_scores(alice) == {1: (2.0, 3.0), 3: (0.0, 1.0)}
    text = batch.feedback("alice", alice)
    assert "Score: 2 / 4" in text and "no" in text
    assert "secret record" not in text, "hidden checks' details stay hidden"
    header, rows = batch.gradebook_rows({"bob": bob, "alice": alice})
    assert header == ["student", "1 train", "3 fastapi", "total", "max"]
    assert rows == [["alice", "2", "0", "2", "4"], ["bob", "0", "1", "1", "3"]]


def test_cohort_report_has_charts(tmp_path: Path) -> None:
    everyone = {
        f"s{i}": fake_results({"1.1": (2 * (i % 2), 2, "train.py crashed"), "2.1": (1, 1, "")})
        for i in range(6)
    }
    report = cohort.write_report(tmp_path, everyone)
    text = report.read_text()
    for png in ("scores.png", "pass-rates.png", "failures.png"):
        assert (tmp_path / "charts" / png).stat().st_size > 1000
        assert f"charts/{png}" in text
    assert "| 1.1 check 1.1 | 50 % | 6 |" in text
    assert "train.py crashed | 3 |" in text


def test_results_are_written_atomically(tmp_path: Path) -> None:
    target = tmp_path / "students" / "x" / "results.json"
    batch.write_atomic(target, "{}")
    batch.write_atomic(target, '{"score": 1}')
    assert json.loads(target.read_text()) == {"score": 1}
    assert [p.name for p in target.parent.iterdir()] == ["results.json"]


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
        (dest / "predict.py").write_text(text.replace("client: Client", "client: dict").replace(
            "[client.model_dump()]", "[client]"))  # fmt: skip
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
    "solution": 2, "unanswered": 1, "dict-service": 1,
    "starter": 4, "broken-train": 4, "empty": 4, "train-only": 4,
}  # fmt: skip


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
    return subprocess.run(cmd, cwd=ROOT, env=data_env(), capture_output=True, text=True,
                          timeout=timeout, check=False)  # fmt: skip


def gradebook(out: Path) -> list[list[str]]:
    with (out / "gradebook.csv").open() as f:
        return list(csv.reader(f))


def differences(out: Path, alone: dict[str, dict[str, Any]], students: dict[str, str]) -> str:
    """For a failed comparison: each check whose status differs from the graded-alone run."""
    lines = []
    for name, kind in students.items():
        path = out / "students" / name / "results.json"
        if not path.is_file():
            continue
        got = {t["name"]: t for t in json.loads(path.read_text())["tests"]}
        for test in alone[kind]["tests"]:
            other = got.get(test["name"], {})
            if other.get("status") != test["status"]:
                output = str(other.get("output"))[:500]
                lines.append(
                    f"{name} {test['name']}: alone {test['status']}, "
                    f"batch {other.get('status')}: {output}"
                )
    return "\n".join(lines)


def finished(out: Path) -> int:
    return len(list((out / "students").glob("*/results.json")))


@pytest.fixture(scope="module")
def alone(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Each distinct variant graded alone with the one-submission CLI (two at a time)."""
    from concurrent.futures import ThreadPoolExecutor

    root = tmp_path_factory.mktemp("alone")

    def one(kind: str) -> tuple[str, dict[str, Any]]:
        variant(kind, root / kind)
        _, results, _ = grade(root / kind, *GRADE_ARGS)
        return kind, results

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(pool.map(one, COHORT))


@pytest.mark.slow
def test_batch_matches_alone_and_resumes_after_a_kill(
    tmp_path: Path, alone: dict[str, dict[str, Any]]
) -> None:
    students = make_cohort(tmp_path / "cohort")
    assert len(students) >= 20
    expected_header, expected_rows = batch.gradebook_rows(
        {name: alone[kind] for name, kind in students.items()}
    )
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "grader.cli", "batch", str(tmp_path / "cohort"), "--jobs", "2",
           "--out", str(out), *BATCH_ARGS]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, env=data_env(), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
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

    resumed = run_batch(str(tmp_path / "cohort"), "--jobs", "2", "--out", str(out), "--resume",
                        *BATCH_ARGS)  # fmt: skip
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
        assert results["score"] == alone[students[name]]["score"]

    # The two shards, resumed apart and merged, give the same gradebook.
    for i, shard_out in enumerate(shard_outs, start=1):
        run = run_batch(str(tmp_path / "cohort"), "--jobs", "2", "--out", str(shard_out),
                        "--shard", f"{i}/2", "--resume", *BATCH_ARGS)  # fmt: skip
        assert run.returncode == 0, run.stderr
        assert ", 0 left;" not in run.stderr, "each shard should have had students left to grade"
    merged = tmp_path / "merged"
    run = run_batch("--merge", *map(str, shard_outs), "--out", str(merged))
    assert run.returncode == 0, run.stderr
    assert gradebook(merged) == rows, differences(merged, alone, students)
