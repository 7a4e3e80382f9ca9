"""GitHub Classroom and Gradescope: the workflow template is a valid workflow that grades once
and gives each check its own step and points, at a pinned grader, and whose commands work with
only the environment Classroom's command grader gives them; the grader ships without the
course (no solutions/); the Gradescope entry grades a submission laid out as Gradescope does (a
zipped folder inside the upload), keeps the seed's sign, and writes a results.json in
Gradescope's documented format (grader/schemas/gradescope-results.schema.json)."""

from __future__ import annotations

import ast
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from grader import options
from grader.results.report import CheckResult, Report, parse_check_id
from tests.grader_helpers import max_score, valid_gradescope
from tests.support import ROOT, data_env

HOMEWORK, SOLUTIONS = ROOT / "homework", ROOT / "solutions"
INSTRUCTORS = ROOT / "instructors"
WORKFLOW = INSTRUCTORS / "classroom" / "classroom.yml"
GRADESCOPE = INSTRUCTORS / "gradescope"
# What classroom-resources/autograding-command-grader@v1 gives each command: these variables
# only (its `env` object), whatever the workflow sets.
COMMAND_GRADER_ENV = ("PATH", "HOME")
COMMAND_GRADER_FIXED = {"FORCE_COLOR": "true", "DOTNET_CLI_HOME": "/tmp", "DOTNET_NOLOGO": "true"}
RESULT = "uv run --project grader --frozen --group grader grade result report.json"


def declared_checks() -> list[tuple[str, str, float, str | None]]:
    """(id, title, points, needs) of every @check(...) in the contracts, read from their
    source, in id order."""
    found = []
    for module in sorted((ROOT / "grader" / "contracts").glob("test_*.py")):
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "check":
                args = [
                    ast.literal_eval(a) if isinstance(a, ast.Constant) else ast.unparse(a)
                    for a in node.args
                ]
                kwargs = {k.arg: ast.literal_eval(k.value) for k in node.keywords}
                points = kwargs.get("points", args[2] if len(args) > 2 else None)
                found.append((str(args[0]), str(args[1]), float(points), kwargs.get("needs")))
    return sorted(found, key=lambda c: parse_check_id(c[0]))


def classroom_checks() -> dict[str, float]:
    """{id: points} of what a Classroom run grades: every check but the live --url ones (it
    does not know the student's deployment); GitHub's runners have Docker for stage 6."""
    return {cid: points for cid, _, points, needs in declared_checks() if needs != "url"}


def gradescope_points() -> float:
    """The maximum on Gradescope: no container engine there and no --url."""
    return sum(points for _, _, points, needs in declared_checks() if needs is None)


def workflow() -> dict[str, Any]:
    from ruamel.yaml import YAML

    loaded: dict[str, Any] = YAML(typ="safe").load(WORKFLOW.read_text())
    return loaded


def graded_steps() -> list[dict[str, Any]]:
    steps = workflow()["jobs"]["run-autograding-tests"]["steps"]
    return [s for s in steps if "autograding-command-grader" in str(s.get("uses", ""))]


def test_classroom_workflow_is_a_valid_github_workflow() -> None:
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.github-workflows",
            str(WORKFLOW),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr


def grade_step() -> dict[str, Any]:
    steps = workflow()["jobs"]["run-autograding-tests"]["steps"]
    return next(s for s in steps if s.get("id") == "grade")


def test_classroom_grades_once_and_gives_each_check_its_own_points() -> None:
    """One grading (its report), then one all-or-nothing step per check with that check's
    points: Classroom's total is the grader's, and a wrong answer costs its own point."""
    steps = workflow()["jobs"]["run-autograding-tests"]["steps"]
    grade = " ".join(grade_step()["run"].split())
    assert (
        "grade submission --spec credit --stage all --require-sandbox --report report.json" in grade
    ), grade
    assert grade_step().get("continue-on-error") is True, "a failed check must not stop the job"
    graded = graded_steps()
    expected = classroom_checks()
    assert [s["with"]["command"].split()[-1] for s in graded] == list(expected)
    for step in graded:
        command = " ".join(step["with"]["command"].split())
        check_id = command.split()[-1]
        assert command == f"{RESULT} {check_id}", command
        assert float(step["with"]["max-score"]) == expected[check_id], (check_id, step)
        assert step["with"]["test-name"].startswith(f"{check_id} ")
    assert steps.index(grade_step()) < steps.index(graded[0])
    reporter = next(s for s in steps if "grading-reporter" in str(s.get("uses", "")))
    assert reporter["with"]["runners"] == ",".join(s["id"] for s in graded)
    for step in graded:
        assert f"steps.{step['id']}.outputs.result" in str(reporter["env"])


def test_classroom_pins_the_graders_version() -> None:
    """The grader is checked out at a tag the instructor pushed for the term, never a branch
    (a grader update cannot change scores mid-term), and the guide says how."""
    ref = workflow()["env"]["GRADER_REF"]
    assert ref not in ("main", "master", "HEAD") and "/" not in ref, ref
    guide = (INSTRUCTORS / "README.md").read_text()
    assert "GRADER_REF" in guide and "git tag" in guide and "git push" in guide


def test_grade_result_tells_whether_checks_passed(tmp_path: Path) -> None:
    """What each Classroom step runs: exit 0 only if every named check passed."""
    checks = [
        CheckResult("1.1", "train.py runs", 1, 2, "passed"),
        CheckResult("1.52", "answer 1.c", 1, 1, "failed", "you answered 0.5"),
        CheckResult("6.9", "the image builds", 6, 2, "skipped", "no engine"),
    ]
    report = Report("x", "credit", 7, 0, "test", checks)
    path = tmp_path / "report.json"
    path.write_text(json.dumps(report.to_json()))

    def result(*ids: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "grader.cli", "result", str(path), *ids],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )

    assert result("1.1").returncode == 0
    wrong = result("1.52")
    assert wrong.returncode == 1 and "you answered 0.5" in wrong.stdout
    assert result("1.1", "1.52").returncode == 1
    assert result("6.9").returncode == 1, "a check not graded earns nothing"
    assert result("2.1").returncode == 1 and "not graded" in result("2.1").stdout
    (tmp_path / "garbage.json").write_text("{")
    broken = subprocess.run(
        [sys.executable, "-m", "grader.cli", "result", str(tmp_path / "garbage.json"), "1.1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert broken.returncode == 1 and "no readable report" in broken.stderr


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
    commands = {" ".join(s["with"]["command"].split()).rsplit(" ", 1)[0] for s in graded_steps()}
    assert commands == {RESULT}, f"the checks' commands differ beyond the check: {commands}"


def test_grader_bundle_holds_the_grader_only(tmp_path: Path) -> None:
    dest = tmp_path / "grader-public"
    run = subprocess.run(
        ["bash", str(INSTRUCTORS / "bundle_grader.sh"), str(dest)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    names = sorted(p.name for p in dest.iterdir())
    assert names == [".python-version", "README.md", "grader", "pyproject.toml", "uv.lock"]
    assert not list(dest.rglob("__pycache__"))
    assert (dest / "grader" / "contracts" / "test_answers.py").is_file()


@pytest.mark.slow
def test_classroom_commands_run_with_the_command_graders_environment(tmp_path: Path) -> None:
    """The workspace as the workflow lays it out (submission/, grader/, data/): the Grade step,
    then each check's command as the command grader runs it (`sh -c`, PATH and HOME only).
    The reference solution gets every check's points. Stage 6's build (GitHub's runners have
    Docker) is left out here: the Grade step runs with --engine none and the checks that need
    an engine are not run."""
    workspace = tmp_path / "workspace"
    shutil.copytree(
        SOLUTIONS,
        workspace / "submission",
        ignore=shutil.ignore_patterns("*.bin", ".venv", "__pycache__"),
    )
    subprocess.run(
        ["bash", str(INSTRUCTORS / "bundle_grader.sh"), str(workspace / "grader")],
        check=True,
        capture_output=True,
    )
    (workspace / "data").mkdir()
    shutil.copy(data_env()["CREDIT_DATA"], workspace / "data" / "AER_credit_card_data.csv")
    setup_env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    sync = subprocess.run(
        ["uv", "sync", "--locked", "--group", "grader"],
        cwd=workspace / "grader",
        env=setup_env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert sync.returncode == 0, sync.stderr[-2000:]
    env = {k: os.environ[k] for k in COMMAND_GRADER_ENV} | COMMAND_GRADER_FIXED
    grade = " ".join(grade_step()["run"].split()) + " --engine none"
    run = subprocess.run(
        ["sh", "-c", grade],
        cwd=workspace,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert run.returncode == 0, f"{grade}\n{run.stdout[-3000:]}"
    valid_gradescope(json.loads((workspace / "results.json").read_text()))
    engine = {cid for cid, _, _, needs in declared_checks() if needs == "engine"}
    earned = 0.0
    for step in graded_steps():
        command = step["with"]["command"]
        if command.split()[-1] in engine:
            continue
        run = subprocess.run(
            ["sh", "-c", command],
            cwd=workspace,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert run.returncode == 0, f"{shlex.quote(command)}\n{run.stdout[-3000:]}"
        earned += float(step["with"]["max-score"])
    expected = sum(v for cid, v in classroom_checks().items() if cid not in engine)
    assert earned == expected > 50


def test_autograder_zip(tmp_path: Path) -> None:
    out = tmp_path / "autograder.zip"
    run = subprocess.run(
        ["bash", str(GRADESCOPE / "make_autograder.sh"), "1234"],
        env={**os.environ, "OUT": str(out)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    names = set(zipfile.ZipFile(out).namelist())
    for name in (
        "setup.sh",
        "run_autograder",
        "pyproject.toml",
        "uv.lock",
        ".python-version",
        "grader/cli.py",
        "grader/contracts/test_answers.py",
        "seed.txt",
    ):
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
    run = subprocess.run(
        ["bash", str(GRADESCOPE / "run_autograder")],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads((root / "results" / "results.json").read_text())
    valid_gradescope(results)
    assert results["extra_data"]["submission"] == "homework"
    assert "Graded the folder homework/ of your upload" in results["output"]
    assert results["score"] <= 0.10 * max_score(results)
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
    run = subprocess.run(
        ["bash", str(GRADESCOPE / "run_autograder")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0
    results = json.loads((root / "results" / "results.json").read_text())
    valid_gradescope(results)
    assert results["score"] == 0 and "could not grade" in results["output"]


def fake_uv(bin_dir: Path) -> None:
    """A `uv` that records how it was called (and the seed file's content) instead of
    grading, and writes a results.json: what run_autograder and setup.sh hand over."""
    bin_dir.mkdir(parents=True)
    (bin_dir / "uv").write_text(
        "#!/usr/bin/env python3\n"
        "import json, os, sys\n"
        "args = sys.argv[1:]\n"
        "seed = open(args[args.index('--seed-file') + 1]).read() if '--seed-file' in args "
        "else None\n"
        "record = {'args': args, 'cwd': os.getcwd(), 'seed': seed}\n"
        "with open(os.environ['FAKE_UV_LOG'], 'a') as f:\n"
        "    f.write(json.dumps(record) + '\\n')\n"
        "if '--json' in args:\n"
        "    open(args[args.index('--json') + 1], 'w').write('{\"score\": 0, \"tests\": []}')\n"
    )
    (bin_dir / "uv").chmod(0o755)


@pytest.mark.parametrize("seed", ["3917240586", "-42"])
def test_gradescope_seed_round_trips(tmp_path: Path, seed: str) -> None:
    """make_autograder.sh's seed.txt reaches the grader unchanged, sign included, as a file
    only its owner reads (--seed-file, never on a command line); the grader reads it as the
    same integer `grade batch --seed` takes."""
    out = tmp_path / "autograder.zip"
    made = subprocess.run(
        ["bash", str(GRADESCOPE / "make_autograder.sh"), seed],
        env={**os.environ, "OUT": str(out)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    root = tmp_path / "autograder"
    (root / "submission").mkdir(parents=True)
    with zipfile.ZipFile(out) as z:
        z.extractall(root / "source")
        assert z.getinfo("seed.txt").external_attr >> 16 & 0o077 == 0, "seed.txt readable by all"
    fake_uv(tmp_path / "bin")
    log = tmp_path / "uv.log"
    env = {
        **os.environ,
        "AUTOGRADER_ROOT": str(root),
        "FAKE_UV_LOG": str(log),
        "PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}",
    }
    run = subprocess.run(
        ["bash", str(GRADESCOPE / "run_autograder")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    (call,) = [json.loads(line) for line in log.read_text().splitlines()]
    assert "--seed" not in call["args"] and seed not in call["args"]
    assert call["seed"].strip() == seed
    seed_file = Path(call["args"][call["args"].index("--seed-file") + 1])
    assert options.read_seed(str(seed_file)) == int(seed)
    valid_gradescope(json.loads((root / "results" / "results.json").read_text()))


def test_gradescope_setup_honours_autograder_root(tmp_path: Path) -> None:
    """setup.sh installs into the same root as run_autograder (AUTOGRADER_ROOT): its downloads
    and installs stubbed, the grader's environment is synced in $AUTOGRADER_ROOT/source."""
    root = tmp_path / "autograder"
    (root / "source").mkdir(parents=True)
    fake_uv(tmp_path / "bin")
    # sha256sum reads its pipe, as the real one does: the echo before it gets no SIGPIPE
    stubs = {"apt-get": "exit 0", "curl": "exit 0", "sha256sum": "cat >/dev/null"}
    for tool, script in stubs.items():
        (tmp_path / "bin" / tool).write_text(f"#!/bin/sh\n{script}\n")
        (tmp_path / "bin" / tool).chmod(0o755)
    log = tmp_path / "uv.log"
    env = {
        **os.environ,
        "AUTOGRADER_ROOT": str(root),
        "FAKE_UV_LOG": str(log),
        "PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}",
    }
    run = subprocess.run(
        ["bash", str(GRADESCOPE / "setup.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(c["args"][:1], c["cwd"]) for c in calls] == [
        (["sync"], str(root / "source")),  # the grader's environment
        (["run"], str(root / "source")),  # grade setup
        (["run"], str(root / "source")),  # grade doctor
    ]


def test_guide_says_which_total_to_set_on_gradescope() -> None:
    """Gradescope has no container engine and no --url: the assignment's total is what the
    reference solution scores there, and the guide says it."""
    guide = (INSTRUCTORS / "README.md").read_text()
    found = re.search(r"set the assignment's total to \*\*(\d+) points\*\*", guide)
    assert found, "the guide does not say which point total to set on Gradescope"
    assert float(found[1]) == gradescope_points()


def test_readme_gives_every_checks_weight() -> None:
    """grader/README.md's table of points names every check with the points it has, and the
    two severe mistakes leave at most 85 % of every maximum."""
    text = (ROOT / "grader" / "README.md").read_text()
    table = text.split("## Points:", 1)[1]
    stated: dict[str, float] = {}
    others = None  # the points of "every other check"
    for points_text, checks in re.findall(r"^\| (\d+) \| (.*?) \|", table, re.M):
        if checks.startswith("every other check"):
            others = float(points_text)
            continue
        for check_id in re.findall(r"\b(\d\.\d+)\b", checks):
            stated[check_id] = float(points_text)
    for check_id, title, points, _ in declared_checks():
        if parse_check_id(check_id)[1] >= 50:
            assert "each answer" in table and points == 1, check_id
            continue
        said = stated.get(check_id, others)
        assert said == points, (check_id, title, points, said)
    everything = sum(p for *_, p, _ in declared_checks())
    for maximum in (everything, sum(classroom_checks().values()), gradescope_points()):
        for severe in ("1.4", "3.3"):
            assert maximum - (stated[severe] + 1) <= 0.85 * maximum, (severe, maximum)
    assert f"maximum is\n{everything:g} points" in table or f"{everything:g} points" in table
