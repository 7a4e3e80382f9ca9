"""Repository hygiene: workflows valid, no datasets or models committed, one Python everywhere,
the grader's tests laid out like its modules."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.support import ALL_STEPS, HARDENED_STEP, ROOT

# Steps 05 on are uv projects of their own (01–04 use the root project).
PROJECT_STEPS = ALL_STEPS[4:]


def test_workflows_validate_against_the_github_schema() -> None:
    workflows = sorted(str(p) for p in (ROOT / ".github" / "workflows").glob("*.yml"))
    assert workflows
    result = subprocess.run(
        ["check-jsonschema", "--builtin-schema", "vendor.github-workflows", *workflows],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    block = readme.split("<!-- readme-test: suite -->", 1)[1].split("```")[1]
    assert block.strip() == "bash\nuv run --all-groups pytest"
    ci = (ROOT / ".github" / "workflows" / "ci.yml").read_text()
    assert "run: uv run --all-groups pytest" in ci


def test_no_dataset_or_model_is_tracked() -> None:
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    bad = [f for f in tracked if f.endswith((".csv", ".bin", ".pkl", ".pickle", ".joblib"))]
    assert not bad, bad


def test_one_python_version_everywhere() -> None:
    version = (ROOT / ".python-version").read_text().strip()
    for step in PROJECT_STEPS:
        assert (ROOT / step / ".python-version").read_text().strip() == version, step
    for step in ("06-docker", "07-flyio", HARDENED_STEP):
        assert f"python:{version}-" in (ROOT / step / "Dockerfile").read_text(), step


def test_step_locks_are_current() -> None:
    """The root project and every step that is a uv project of its own (05 on)."""
    for folder in [ROOT, *(ROOT / s for s in PROJECT_STEPS)]:
        result = subprocess.run(
            ["uv", "lock", "--check"], cwd=folder, capture_output=True, text=True
        )
        assert result.returncode == 0, f"{folder.name}: {result.stderr}"


# -- the grader's tests mirror its modules -------------------------------------------------------
# grader/PACKAGE/MODULE.py is unit-tested in tests/grader/unit/PACKAGE/test_MODULE.py, except
# `grade batch`'s course options (grader/batch/course/), tested in tests/grader/course/.
MIRRORS = {"batch/course": "tests/grader/course"}
# Modules that only an end-to-end run exercises, and where that run is.
EXEMPT = {
    # grade batch's course options, through their callers
    "batch/course/addresses.py": "tests/grader/course/test_repos.py (is_public, public_addresses)",
    "batch/course/adjust.py": "tests/grader/course/test_gradebook.py (adjust, feedback)",
    "batch/course/gitrun.py": "tests/grader/course/test_repos.py (clones from a real git server)",
    "batch/course/intake.py": "tests/grader/course/test_repos.py (read_form, parse_time)",
    "batch/course/pinned.py": "tests/grader/course/test_live.py (pin)",
    "batch/course/report_sections.py": "tests/grader/course/test_batch_repos.py (report.md)",
    "batch/course/run.py": "tests/grader/course/test_batch_repos.py (grade batch --repos)",
    "batch/main.py": "`grade batch` itself: tests/grader/test_batch.py, tests/grader/course/",
    # stage 6 needs a container engine
    "containers/run.py": "tests/hostile/test_attack_classes.py, test_unprivileged_container.py",
    # the pytest plugin and one submission's grading: every grading runs them
    "contracts/conftest.py": "every grading: tests/grader/test_grader_lessons.py, test_homework.py",
    "grading/session.py": "every grading; tests/grader/test_homework.py (Grading's lookups)",
    "grading/stage6.py": "tests/grader/test_grader_broken.py (stage 6 with an engine)",
    "grading/timeline.py": "every grading: tests/grader/test_grader_broken.py, test_homework.py",
    # run inside the sandbox by the probe
    "probes/probe.py": "every grading; tests/hostile/test_hostile.py (the corpus)",
    # installs packages and a user, as root, on a fresh machine
    "setup.py": "run by hand on a fresh machine; test_doctor.py checks what it sets up",
}


def grader_modules() -> list[str]:
    """grader/**/*.py but packages' __init__.py and the contracts' checks (test_*.py)."""
    grader = ROOT / "grader"
    return sorted(
        p.relative_to(grader).as_posix()
        for p in grader.rglob("*.py")
        if p.name != "__init__.py"
        and not (p.parent == grader / "contracts" and p.name.startswith("test_"))
    )


def mirror(module: str) -> Path:
    folder, _, name = module.rpartition("/")
    tests = MIRRORS.get(folder, f"tests/grader/unit/{folder}")
    return ROOT / tests / f"test_{name}"


def test_each_grader_module_has_its_unit_tests_or_says_where_it_is_covered() -> None:
    modules = grader_modules()
    missing = [m for m in modules if not mirror(m).is_file() and m not in EXEMPT]
    assert not missing, f"add tests/grader/unit/<package>/test_<module>.py for: {missing}"
    stale = [m for m in EXEMPT if m not in modules or mirror(m).is_file()]
    assert not stale, f"exempt, but gone or unit-tested after all: {stale}"
    tested = {mirror(m) for m in modules}
    unit = ROOT / "tests" / "grader" / "unit"
    strays = [p.relative_to(ROOT) for p in unit.rglob("test_*.py") if p not in tested]
    assert not strays, f"unit test files of no grader module: {strays}"
