"""The homework: the reference solution scores full marks, the starter scores almost nothing,
and every question of the README is an answer the grader checks (against values measured here
by running the solution, with scikit-learn and a real server, not with the grader's code)."""

from __future__ import annotations

import pickle
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from grader.homework import CLIENT_A, CLIENT_B, CLIENT_C, QUESTIONS
from tests.grader_helpers import failed, grade, max_score, status
from tests.support import ROOT, data_env, dataset, free_port, http, python, server

HOMEWORK, SOLUTIONS = ROOT / "homework", ROOT / "solutions"
IGNORE = shutil.ignore_patterns("*.bin", ".venv", "__pycache__", ".server.log")
# What the README asks for, e.g. "- **1.a** `auc`: ..." under the stage's section.
README_QUESTION = re.compile(r"^- \*\*(\d)\.([a-z])\*\* `(\w+)`", re.M)


def copy(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest, ignore=IGNORE)
    return dest


def toml(path: Path) -> dict[str, Any]:
    with path.open("rb") as f:
        return tomllib.load(f)


def keys(answers: dict[str, Any]) -> set[tuple[str, str]]:
    return {(section, key) for section, table in answers.items() for key in table}


# -- fast: README, template, solution's answers and checks agree ------------------------------
def test_every_question_of_the_readme_is_checked() -> None:
    text = (HOMEWORK / "README.md").read_text()
    asked = README_QUESTION.findall(text)
    assert asked, "no questions found in homework/README.md"
    checked = {q.key: q for q in QUESTIONS}
    assert sorted(key for *_, key in asked) == sorted(checked), "README questions != checks"
    sections = ["train", "pipeline", "fastapi", "pydantic", "uv", "docker", "flyio"]
    for stage, _letter, key in asked:
        question = checked[key]
        assert question.check_id.startswith(f"{stage}."), f"{key}: asked in stage {stage}"
        assert question.section == sections[int(stage) - 1], f"{key}: wrong [section]"
    expected = {(q.section, q.key) for q in QUESTIONS}
    assert keys(toml(HOMEWORK / "answers.toml")) == expected, "template keys != questions"
    assert keys(toml(SOLUTIONS / "answers.toml")) == expected, "solution keys != questions"
    assert all(v == "" for t in toml(HOMEWORK / "answers.toml").values() for v in t.values())


def test_readme_states_the_clients_the_grader_uses() -> None:
    import json

    text = (HOMEWORK / "README.md").read_text()
    blocks = [json.loads(b) for b in re.findall(r"```json\n(.*?)```", text, re.S)]
    for client in (CLIENT_A, CLIENT_B, CLIENT_C):
        assert client in blocks, f"{client} is not stated in the README"


def test_homework_and_solution_files() -> None:
    for name in ("train.py", "predict.py", "Dockerfile", "answers.toml", "README.md"):
        assert (HOMEWORK / name).is_file(), name
    for name in (
        "train.py",
        "predict.py",
        "pyproject.toml",
        "uv.lock",
        ".python-version",
        "Dockerfile",
        ".dockerignore",
        "fly.toml",
        "answers.toml",
    ):
        assert (SOLUTIONS / name).is_file(), name
    assert (SOLUTIONS / ".python-version").read_text().strip() == "3.13"
    assert ".venv" in (SOLUTIONS / ".dockerignore").read_text().split()


def test_solution_lock_is_current() -> None:
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not on PATH")
    run = subprocess.run(
        [uv, "lock", "--check", "--offline"], cwd=SOLUTIONS, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr


# -- slow: run the solution, measure the answers independently --------------------------------
def measured_answers(work: Path) -> dict[str, dict[str, Any]]:
    """Every answer, measured by running the solution in `work` (scikit-learn, a real server)."""
    import pandas as pd
    from sklearn.feature_extraction import DictVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split

    run = subprocess.run(
        [python(), "train.py"],
        cwd=work,
        env=data_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    with (work / "model.bin").open("rb") as f:
        dv, model = pickle.load(f)
    with (work / "pipeline.bin").open("rb") as f:
        pipeline = pickle.load(f)

    df = pd.read_csv(dataset("CREDIT_DATA"))
    df["card"] = (df["card"] == "yes").astype(int)
    df_train, df_test = train_test_split(df, test_size=0.2, random_state=1)
    features = list(CLIENT_A)

    def auc_of(columns: list[str], fit: bool) -> float:
        if not fit:
            scores = model.predict_proba(dv.transform(df_test[columns].to_dict("records")))
            return float(roc_auc_score(df_test["card"], scores[:, 1]))
        v = DictVectorizer(sparse=False)
        m = LogisticRegression(solver="newton-cholesky")
        m.fit(v.fit_transform(df_train[columns].to_dict("records")), df_train["card"])
        scores = m.predict_proba(v.transform(df_test[columns].to_dict("records")))
        return float(roc_auc_score(df_test["card"], scores[:, 1]))

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [python(), "-m", "uvicorn", "predict:app", "--host", "127.0.0.1", "--port", str(port)]
    with server(cmd, work, f"{url}/ping", env=data_env()):
        status_c, body_c = http("POST", f"{url}/predict", CLIENT_C)
        status_bad, _ = http("POST", f"{url}/predict", {**CLIENT_A, "owner": "maybe"})
    assert status_c == 200 and isinstance(body_c, dict), body_c

    lock = toml(work / "uv.lock")
    sklearn = next(p for p in lock["package"] if p["name"] == "scikit-learn")
    wheel = next(
        w
        for w in sklearn["wheels"]
        if re.search(r"cp313-cp313-manylinux[^/]*x86_64[^/]*\.whl$", w["url"])
    )
    return {
        "train": {
            "auc": auc_of(features, fit=False),
            "leaky_auc": auc_of([*features, "share", "expenditure"], fit=True),
            "probability_a": float(model.predict_proba(dv.transform([CLIENT_A]))[0, 1]),
        },
        "pipeline": {"probability_b": float(pipeline.predict_proba([CLIENT_B])[0, 1])},
        "fastapi": {"card_probability_c": body_c["card_probability"], "card_c": body_c["card"]},
        "pydantic": {"status_bad_owner": status_bad},
        "uv": {
            "sklearn_version": sklearn["version"],
            "sklearn_wheel_sha256": wheel["hash"].removeprefix("sha256:"),
        },
        "docker": {},  # measured by the container test below, where an engine runs
        "flyio": {"url": f"https://{toml(work / 'fly.toml')['app']}.fly.dev"},
    }


def wrong(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 0.2 if value < 1 else value * 3 + 1
    return "0" * 64 if len(str(value)) == 64 else str(value) + "x"


@pytest.mark.slow
def test_solution_full_marks_and_its_answers_are_true(tmp_path: Path) -> None:
    work = copy(SOLUTIONS, tmp_path / "measured")
    measured = measured_answers(work)
    committed = toml(SOLUTIONS / "answers.toml")
    for section, table in measured.items():
        for key, value in table.items():
            given = committed[section][key]
            if isinstance(value, float):
                assert abs(given - value) <= 0.0015, f"[{section}] {key}: {given} vs {value}"
            else:
                assert given == value, f"[{section}] {key}: {given!r} vs measured {value!r}"

    code, results, out = grade(
        copy(SOLUTIONS, tmp_path / "solution"),
        "--spec",
        "credit",
        "--stage",
        "all",
        "--engine",
        "none",
    )
    assert code == 0 and not failed(results), out
    assert results["score"] == max_score(results) > 50, out
    answered = {t["extra_data"]["check"] for t in results["tests"] if status(t) == "passed"}
    assert {q.check_id for q in QUESTIONS if q.section != "docker"} <= answered

    # The same work with every answer wrong loses every answer check, and nothing else.
    bad = copy(SOLUTIONS, tmp_path / "wrong-answers")
    lines = []
    for section, table in committed.items():
        lines.append(f"[{section}]")
        for key, value in table.items():
            v = wrong(value)
            lines.append(f"{key} = {str(v).lower() if isinstance(v, bool) else repr(v)}")
    (bad / "answers.toml").write_text("\n".join(lines).replace("'", '"') + "\n")
    _, results, out = grade(bad, "--spec", "credit", "--stage", "all", "--engine", "none")
    expected = {q.check_id for q in QUESTIONS if q.section != "docker"}
    assert set(failed(results)) == expected, out
    assert failed(results)["1.52"].startswith("you answered")


@pytest.mark.slow
def test_starter_scores_at_most_ten_percent(tmp_path: Path) -> None:
    code, results, out = grade(
        copy(HOMEWORK, tmp_path / "starter"),
        "--spec",
        "credit",
        "--stage",
        "all",
        "--engine",
        "none",
    )
    assert code == 1
    assert max_score(results) > 50, out
    assert results["score"] <= 0.10 * max_score(results), out


@pytest.mark.slow
@pytest.mark.container
def test_solution_image_full_marks_and_size(tmp_path: Path, container_engine: str) -> None:
    """Stage 6 with a real build: every check passes, the image size answer included."""
    code, results, out = grade(
        copy(SOLUTIONS, tmp_path / "solution"),
        "--spec",
        "credit",
        "--stage",
        "all",
        "--only",
        "6",
        "--engine",
        container_engine,
        "--docker",
        timeout=1500,
    )
    assert code == 0 and not failed(results), out
    statuses = {t["extra_data"]["check"]: status(t) for t in results["tests"]}
    assert statuses["6.9"] == statuses["6.10"] == statuses["6.50"] == "passed", statuses


def test_clients_are_among_what_the_grader_sends(credit_csv: Path, monkeypatch: Any) -> None:
    """B and C are held-out rows, and C is in the public HTTP sample: no extra student run."""
    from grader.grading.session import Grading
    from grader.options import Options

    monkeypatch.setenv("CREDIT_DATA", str(credit_csv))
    probes = Grading(Options(submission=SOLUTIONS, spec_name="credit")).records
    assert probes.example == CLIENT_A
    assert CLIENT_B in probes.heldout
    assert probes.heldout.index(CLIENT_C) in probes.public_sample


GRADE_COMMAND = re.compile(
    r"^uv run (?:--project (\S+) )?--group grader grade (\S+) --spec credit", re.M
)


@pytest.mark.slow
def test_documented_grading_commands_work_at_every_stage(tmp_path: Path) -> None:
    """From inside the homework folder the README grades with
    `uv run --project .. --group grader grade .`: without `--project ..` it stops working once
    the folder has a pyproject.toml of its own (stage 5), since uv then runs the folder's
    project, which has no grader."""
    from grader.environment import real_uv

    commands = GRADE_COMMAND.findall((HOMEWORK / "README.md").read_text())
    assert commands, "the README shows no grading command"
    for project, path in commands:
        assert (path, project) in {("homework", ""), (".", "..")}, (project, path)
    uv = real_uv()
    assert uv is not None
    # a student folder at stage 5+ (its own pyproject.toml), where the course's is one level up
    course = tmp_path / "course"
    course.mkdir()
    student = copy(SOLUTIONS, course / "homework")
    # a plain PATH: uv's folder, the folder of a Python 3.13 (wherever uv came from: pip in a
    # virtual environment has no interpreter of its own for uv to find) and the system's
    base = Path(getattr(sys, "_base_executable", sys.executable)).resolve().parent
    env = {**data_env(), "PATH": f"{Path(uv).parent}:{base}:/usr/bin:/bin"}
    for args in (["--project", str(ROOT)], []):
        argv = [uv, "run", *args, "--group", "grader", "grade", "."]
        argv += ["--spec", "credit", "--stage", "1"]
        proc = subprocess.run(
            argv,
            cwd=student,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if args:
            assert proc.returncode == 0 and "Total: " in proc.stdout, proc.stdout + proc.stderr
        else:  # what the README no longer says, and why
            assert proc.returncode != 0 and "grade" in proc.stderr, proc.stderr
