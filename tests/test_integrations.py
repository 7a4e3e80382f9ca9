"""GitHub Classroom and Gradescope: the workflow template is a valid workflow whose steps run the
grader with each stage's points; the Gradescope entry grades a submission laid out as Gradescope
does and writes a results.json in Gradescope's format."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from support import ROOT, data_env

HOMEWORK = ROOT / "homework"
WORKFLOW = HOMEWORK / "classroom" / ".github" / "workflows" / "classroom.yml"
GRADESCOPE = HOMEWORK / "gradescope"
CHECK = re.compile(r'@check\(\s*(?:f?)"(\d)\.(\d+)",\s*f?"([^"]*)",\s*points=([\d.]+)')

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


def stage_points() -> dict[int, float]:
    """Points per stage that a Classroom run can earn: every check, except the live --url ones."""
    points: dict[int, float] = {}
    for module in sorted((ROOT / "grader" / "contracts").glob("test_*.py")):
        for stage, _n, title, value in CHECK.findall(module.read_text()):
            if "live deployment" in title:
                continue  # needs --url: Classroom does not know the student's deployment
            points[int(stage)] = points.get(int(stage), 0.0) + float(value)
    return points


def test_classroom_workflow_is_a_valid_github_workflow() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows",
         str(WORKFLOW)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr


def test_classroom_steps_run_the_grader_with_each_stages_points() -> None:
    from ruamel.yaml import YAML

    workflow = YAML(typ="safe").load(WORKFLOW.read_text())
    steps = workflow["jobs"]["run-autograding-tests"]["steps"]
    graded = [s for s in steps if "autograding-command-grader" in str(s.get("uses", ""))]
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
    assert not any("__pycache__" in n for n in names)
    assert zipfile.ZipFile(out).read("seed.txt").decode().strip() == "1234"


@pytest.mark.slow
def test_gradescope_entry_writes_results_json(tmp_path: Path) -> None:
    """A zip uploaded with a folder inside: /autograder/submission/homework/train.py ..."""
    root = tmp_path / "autograder"
    ignore = shutil.ignore_patterns("classroom", "gradescope", "README.md")
    shutil.copytree(HOMEWORK, root / "submission" / "homework", ignore=ignore)
    env = {**data_env(), "AUTOGRADER_ROOT": str(root), "GRADER_SOURCE": str(ROOT)}
    run = subprocess.run(["bash", str(GRADESCOPE / "run_autograder")], env=env,
                         capture_output=True, text=True, timeout=900, check=False)  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads((root / "results" / "results.json").read_text())
    jsonschema.validate(results, GRADESCOPE_SCHEMA)
    assert results["extra_data"]["submission"].endswith("submission/homework")
    assert results["score"] <= 0.10 * results["max_score"]
    names = [t["name"] for t in results["tests"]]
    assert any(n.startswith("1.1 ") for n in names) and any(n.startswith("7.50 ") for n in names)


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
