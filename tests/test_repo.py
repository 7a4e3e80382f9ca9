"""Repository hygiene: workflows valid, no datasets or models committed, one Python everywhere."""

from __future__ import annotations

import subprocess

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
