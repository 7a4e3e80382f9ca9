"""Fast tests of the grader's parts (no student code runs)."""

from __future__ import annotations

import pickle
import random
import subprocess
import sys
from pathlib import Path

import pytest

from grader.contracts.common import auc
from grader.records import seeded_bad_requests, valid_records
from grader.results import render
from grader.results.report import CheckResult, Report
from grader.sandbox import Limits, Sandbox
from grader.specs import CHURN, CREDIT, Dataset, split
from grader.submission.dockerfile import parse
from grader.submission.picklescan import sklearn_versions
from tests.grader_helpers import DOCKERFILE, valid_gradescope


@pytest.mark.slow  # imports scikit-learn or runs the grader in child processes
def test_split_matches_sklearn(churn_csv: Path) -> None:
    data = CHURN.load(churn_csv)
    ours = split(data, 0.2, 1)
    code = (
        "import json,sys;from sklearn.model_selection import train_test_split;"
        "n=int(sys.argv[1]);_,t=train_test_split(list(range(n)),test_size=0.2,random_state=1);"
        "print(json.dumps(t))"
    )
    out = subprocess.run([sys.executable, "-c", code, str(len(data.records))],
                         capture_output=True, text=True, check=True)  # fmt: skip
    expected = [data.records[i] for i in __import__("json").loads(out.stdout)]
    assert ours.test.records == expected


def test_credit_preprocessing(credit_csv: Path) -> None:
    data = CREDIT.load(credit_csv)
    assert len(data.records) == 1319
    assert set(data.records[0]) == set(CREDIT.features)
    assert set(data.targets) == {0, 1}


def test_auc_matches_definition() -> None:
    assert auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.75
    assert auc([0, 1], [0.5, 0.5]) == 0.5


def test_seeded_probes_depend_on_seed_only() -> None:
    data = Dataset([dict(CHURN.example, tenure=t) for t in range(50)], [t % 2 for t in range(50)])
    a = valid_records(CHURN, data, random.Random("seed-1"), 6)
    b = valid_records(CHURN, data, random.Random("seed-1"), 6)
    c = valid_records(CHURN, data, random.Random("seed-2"), 6)
    assert a == b != c
    bad = seeded_bad_requests(CHURN, data, random.Random("seed-1"), 10)
    assert [x.body for x in bad] == [
        x.body for x in seeded_bad_requests(CHURN, data, random.Random("seed-1"), 10)
    ]


def test_picklescan_reads_version_without_unpickling(tmp_path: Path) -> None:
    class Fake:
        pass

    state = {"coef_": [1.0], "_sklearn_version": "1.6.1"}
    path = tmp_path / "model.bin"
    path.write_bytes(pickle.dumps((state, {"_sklearn_version": "1.6.1"}), protocol=5))
    assert sklearn_versions(path) == {"1.6.1"}
    path.write_bytes(b"not a pickle")
    try:
        sklearn_versions(path)
    except ValueError as e:
        assert "not a readable pickle" in str(e)
    del Fake


def test_dockerfile_reader() -> None:
    df = parse(DOCKERFILE)
    assert df.base_images() == ["python:3.13-slim-bookworm"]
    assert df.host() == "0.0.0.0"
    assert df.served_port() == 9696
    assert df.exposed_ports() == [9696]
    assert df.user() == "app"
    shell = parse("FROM python:3.13\nCMD uvicorn predict:app --host=127.0.0.1 --port=8000\n")
    assert shell.host() == "127.0.0.1" and shell.served_port() == 8000 and shell.user() is None


def test_gradescope_format() -> None:
    report = Report("x", "churn", 6, 3, "test", [
        CheckResult("1.1", "train.py runs", 1, 2, "passed"),
        CheckResult("1.5", "seeded", 1, 1, "failed", "fix it", hidden=True),
        CheckResult("6.9", "builds", 6, 2, "skipped", "no engine"),
    ])  # fmt: skip
    data = render.gradescope(report, render.Redactor(report.submission))
    valid_gradescope(data)  # Gradescope's documented format: no other top-level key or status
    assert (data["score"], data["extra_data"]["max_score"]) == (2, 3)
    names = [(t["number"], t["name"]) for t in data["tests"]]
    assert names == [("1.1", "train.py runs"), ("1.5", "seeded"), ("6.9", "builds")]
    hidden = data["tests"][1]
    assert hidden["visibility"] == "after_published" and hidden["extra_data"]["stage"] == 1
    assert {"name", "score", "max_score", "status", "output", "visibility"} <= set(hidden)
    # not graded here: an informational test, counted for neither side, that says why
    skipped = data["tests"][2]
    assert "status" not in skipped and "score" not in skipped and "max_score" not in skipped
    assert "skipped" in skipped["tags"] and skipped["output"] == "Skipped, not counted: no engine"


@pytest.mark.slow  # imports scikit-learn or runs the grader in child processes
def test_sandbox_limits_and_isolation(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "hello.txt").write_text("hi")
    box = Sandbox(tmp_path / "sub")
    try:
        hang = box.run([sys.executable, "-c", "while True: pass"], Limits(wall_seconds=2))
        assert hang.timed_out and not hang.ok
        env = box.run([sys.executable, "-c", "import os; print(sorted(os.environ))"])
        assert "CHURN_DATA" not in env.stdout and "HOME" in env.stdout
        big = box.run(
            [sys.executable, "-c", "open('big', 'wb').write(b'x' * 3_000_000)"],
            Limits(file_bytes=1_000_000),
        )
        assert not big.ok
        if box.bwrap:
            outside = box.run([sys.executable, "-c", f"open({str(tmp_path)!r} + '/x', 'w')"])
            assert not outside.ok, "the sandbox could write outside its scratch copy"
            # No traffic leaves this machine in tests: look at the interfaces instead.
            net = box.run(
                [
                    sys.executable,
                    "-c",
                    "import socket; print([n for _, n in socket.if_nameindex()])",
                ]
            )
            assert net.stdout.strip() == "['lo']", f"the sandbox has a network: {net.stdout}"
            assert "bubblewrap" in box.isolation
        else:
            assert "rlimits and timeouts only" in box.isolation
        write = box.run([sys.executable, "-c", "open('out.txt', 'w').write('ok')"])
        assert write.ok and (box.scratch / "out.txt").read_text() == "ok"
    finally:
        box.close()
