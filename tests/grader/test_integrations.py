"""GitHub Classroom and Gradescope: the workflow template is a valid workflow whose steps run the
grader with each stage's points, and whose commands work with only the environment Classroom's
command grader gives them; the grader ships without the course (no solutions/); the Gradescope
entry grades a submission laid out as Gradescope does (a zipped folder inside the upload) and
writes a results.json in Gradescope's format."""

from __future__ import annotations

import ast
import json
import os
import shlex
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from support import ROOT, data_env

from grader.results.report import parse_check_id

HOMEWORK, SOLUTIONS = ROOT / "homework", ROOT / "solutions"
INSTRUCTORS = ROOT / "instructors"
WORKFLOW = INSTRUCTORS / "classroom" / "classroom.yml"
GRADESCOPE = INSTRUCTORS / "gradescope"
# What classroom-resources/autograding-command-grader@v1 gives each command: these variables
# only (its `env` object), whatever the workflow sets.
COMMAND_GRADER_ENV = ("PATH", "HOME")
COMMAND_GRADER_FIXED = {"FORCE_COLOR": "true", "DOTNET_CLI_HOME": "/tmp", "DOTNET_NOLOGO": "true"}

# Gradescope's results.json (https://gradescope-autograders.readthedocs.io, "Output format").
GRADESCOPE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["tests"],
    "anyOf": [{"required": ["score"]}, {"required": ["tests"]}],
    "properties": {
        "score": {"type": "number"},
        "max_score": {"type": "number"},
        "output": {"type": "string"},
        "visibility": {"enum": ["hidden", "after_due_date", "after_published", "visible"]},
        "stdout_visibility": {"enum": ["hidden", "after_due_date", "after_published", "visible"]},
        "extra_data": {"type": "object"},
        "tests": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "score": {"type": "number"},
                    "max_score": {"type": "number"},
                    "status": {"enum": ["passed", "failed"]},
                    "name": {"type": "string"},
                    "number": {"type": "string"},
                    "output": {"type": "string"},
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "visibility": {
                        "enum": ["hidden", "after_due_date", "after_published", "visible"]
                    },
                    "extra_data": {"type": "object"},
                },
            },
        },
    },
}


def declared_checks() -> list[tuple[str, str, float]]:
    """(id, title, points) of every @check(...) in the contracts, read from their source."""
    found = []
    for module in sorted((ROOT / "grader" / "contracts").glob("test_*.py")):
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "check":
                args = [ast.literal_eval(a) if isinstance(a, ast.Constant) else ast.unparse(a)
                        for a in node.args]  # fmt: skip
                kwargs = {k.arg: ast.literal_eval(k.value) for k in node.keywords}
                points = kwargs.get("points", args[2] if len(args) > 2 else None)
                found.append((str(args[0]), str(args[1]), float(points)))
    return found


def stage_points() -> dict[int, float]:
    """Points per stage that a Classroom run can earn: every check, except the live --url ones."""
    points: dict[int, float] = {}
    for check_id, title, value in declared_checks():
        if "live deployment" in title:
            continue  # needs --url: Classroom does not know the student's deployment
        stage = parse_check_id(check_id)[0]
        points[stage] = points.get(stage, 0.0) + value
    return points


def workflow() -> dict[str, Any]:
    from ruamel.yaml import YAML

    loaded: dict[str, Any] = YAML(typ="safe").load(WORKFLOW.read_text())
    return loaded


def graded_steps() -> list[dict[str, Any]]:
    steps = workflow()["jobs"]["run-autograding-tests"]["steps"]
    return [s for s in steps if "autograding-command-grader" in str(s.get("uses", ""))]


def test_classroom_workflow_is_a_valid_github_workflow() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows",
         str(WORKFLOW)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr


def test_classroom_steps_run_the_grader_with_each_stages_points() -> None:
    steps = workflow()["jobs"]["run-autograding-tests"]["steps"]
    graded = graded_steps()
    assert [s["id"] for s in graded] == [f"stage-{n}" for n in range(1, 8)]
    points = stage_points()
    for n, step in enumerate(graded, start=1):
        command = " ".join(step["with"]["command"].split())
        assert "grade submission --spec credit" in command and f"--only {n}" in command, command
        assert float(step["with"]["max-score"]) == points[n], (n, points)
    reporter = next(s for s in steps if "grading-reporter" in str(s.get("uses", "")))
    assert reporter["with"]["runners"] == ",".join(s["id"] for s in graded)
    for step in graded:
        assert f"steps.{step['id']}.outputs.result" in str(reporter["env"])


def test_classroom_workflow_triggers_actions_and_grader_source() -> None:
    flow = workflow()
    triggers = flow.get("on", flow.get(True))  # YAML 1.1 reads a bare `on` as true
    assert {"push", "repository_dispatch"} <= set(triggers), triggers
    majors = {}
    for path in (ROOT / ".github" / "workflows" / "ci.yml", WORKFLOW):
        for line in path.read_text().splitlines():
            if "uses:" in line and "@" in line:
                action, version = line.split("uses:")[1].strip().split("@")
                majors.setdefault(action, set()).add(version.split(".")[0])
    for action in ("actions/checkout", "astral-sh/setup-uv"):
        assert len(majors[action]) == 1, f"{action}: {majors[action]} (ci.yml and classroom.yml)"
    steps = flow["jobs"]["run-autograding-tests"]["steps"]
    others = [s["with"]["repository"] for s in steps if "repository" in s.get("with", {})]
    assert others == ["${{ env.GRADER_REPO }}"], "only the grader-only repository is checked out"
    commands = {" ".join(s["with"]["command"].split()).replace(f"--only {n}", "--only N")
                .replace(f"results-{n}", "results-N")
                for n, s in enumerate(graded_steps(), start=1)}  # fmt: skip
    assert len(commands) == 1, f"the stages' commands differ beyond the stage: {commands}"


def test_grader_bundle_holds_the_grader_only(tmp_path: Path) -> None:
    dest = tmp_path / "grader-public"
    run = subprocess.run(["bash", str(INSTRUCTORS / "bundle_grader.sh"), str(dest)],
                         capture_output=True, text=True, check=False)  # fmt: skip
    assert run.returncode == 0, run.stderr
    names = sorted(p.name for p in dest.iterdir())
    assert names == [".python-version", "README.md", "grader", "pyproject.toml", "uv.lock"]
    assert not list(dest.rglob("__pycache__"))
    assert (dest / "grader" / "contracts" / "test_answers.py").is_file()


@pytest.mark.slow
def test_classroom_commands_run_with_the_command_graders_environment(tmp_path: Path) -> None:
    """The workspace as the workflow lays it out (submission/, grader/, data/), each grading
    command run as the command grader runs it: `sh -c`, PATH and HOME only. The reference
    solution gets every stage's points (stage 6 builds an image where an engine answers: its
    command is the others' with another number, checked above, so it is not run here)."""
    workspace = tmp_path / "workspace"
    shutil.copytree(SOLUTIONS, workspace / "submission",
                    ignore=shutil.ignore_patterns("*.bin", ".venv", "__pycache__"))  # fmt: skip
    subprocess.run(["bash", str(INSTRUCTORS / "bundle_grader.sh"), str(workspace / "grader")],
                   check=True, capture_output=True)  # fmt: skip
    (workspace / "data").mkdir()
    shutil.copy(data_env()["CREDIT_DATA"], workspace / "data" / "AER_credit_card_data.csv")
    setup_env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    sync = subprocess.run(["uv", "sync", "--locked", "--group", "grader"],
                          cwd=workspace / "grader", env=setup_env, capture_output=True, text=True,
                          check=False)  # fmt: skip
    assert sync.returncode == 0, sync.stderr[-2000:]
    env = {k: os.environ[k] for k in COMMAND_GRADER_ENV} | COMMAND_GRADER_FIXED
    for n, step in enumerate(graded_steps(), start=1):
        if n == 6:
            continue
        command = step["with"]["command"]
        run = subprocess.run(["sh", "-c", command], cwd=workspace, env=env, capture_output=True,
                             text=True, timeout=900, check=False)  # fmt: skip
        assert run.returncode == 0, f"stage {n}: {shlex.quote(command)}\n{run.stdout[-3000:]}"
        results = json.loads((workspace / f"results-{n}.json").read_text())
        assert results["score"] == results["max_score"] > 0, (n, results["output"])


def test_autograder_zip(tmp_path: Path) -> None:
    out = tmp_path / "autograder.zip"
    run = subprocess.run(
        ["bash", str(GRADESCOPE / "make_autograder.sh"), "1234"],
        env={**os.environ, "OUT": str(out)}, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    names = set(zipfile.ZipFile(out).namelist())
    for name in ("setup.sh", "run_autograder", "pyproject.toml", "uv.lock", ".python-version",
                 "grader/cli.py", "grader/contracts/test_answers.py", "seed.txt"):  # fmt: skip
        assert name in names, name
    assert not any("__pycache__" in n or n.startswith(("solutions", "homework")) for n in names)
    assert zipfile.ZipFile(out).read("seed.txt").decode().strip() == "1234"


@pytest.mark.slow
def test_gradescope_entry_writes_results_json(tmp_path: Path) -> None:
    """A zip uploaded with a folder inside, beside macOS's debris:
    /autograder/submission/homework/train.py, /autograder/submission/__MACOSX/..."""
    root = tmp_path / "autograder"
    shutil.copytree(HOMEWORK, root / "submission" / "homework")
    (root / "submission" / "__MACOSX" / "homework").mkdir(parents=True)
    (root / "submission" / "__MACOSX" / "homework" / "._train.py").write_bytes(b"\0\5\26\7")
    env = {**data_env(), "AUTOGRADER_ROOT": str(root), "GRADER_SOURCE": str(ROOT)}
    run = subprocess.run(["bash", str(GRADESCOPE / "run_autograder")], env=env,
                         capture_output=True, text=True, timeout=900, check=False)  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads((root / "results" / "results.json").read_text())
    jsonschema.validate(results, GRADESCOPE_SCHEMA)
    assert results["extra_data"]["submission"] == "homework"
    assert "Graded the folder homework/ of your upload" in results["output"]
    assert results["score"] <= 0.10 * results["max_score"]
    numbers = [t["number"] for t in results["tests"]]
    assert "1.1" in numbers and "7.50" in numbers
    assert not any(t["name"].startswith(t["number"]) for t in results["tests"]), "number twice"
    assert str(tmp_path) not in json.dumps(results), "a path of the grading machine"


def test_gradescope_entry_reports_a_broken_grader(tmp_path: Path) -> None:
    """No grader where GRADER_SOURCE points: results.json still says what happened."""
    root = tmp_path / "autograder"
    (root / "submission").mkdir(parents=True)
    (root / "source").mkdir()
    (root / "source" / "pyproject.toml").write_text('[project]\nname = "empty"\nversion = "0"\n')
    venv_bin = str(Path(sys.executable).parent)
    path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if p != venv_bin)
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    env |= {"AUTOGRADER_ROOT": str(root), "UV_OFFLINE": "1", "PATH": path}
    run = subprocess.run(["bash", str(GRADESCOPE / "run_autograder")], env=env,
                         capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    assert run.returncode == 0
    results = json.loads((root / "results" / "results.json").read_text())
    jsonschema.validate(results, GRADESCOPE_SCHEMA)
    assert results["score"] == 0 and "could not grade" in results["output"]
