"""Repository hygiene: workflows valid, no datasets or models committed, one Python everywhere."""

from __future__ import annotations

import subprocess

from support import ROOT, STEPS


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
    assert block.strip() == "bash\nuv run pytest"
    ci = (ROOT / ".github" / "workflows" / "ci.yml").read_text()
    assert "run: uv run pytest" in ci


def test_no_dataset_or_model_is_tracked() -> None:
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    bad = [f for f in tracked if f.endswith((".csv", ".bin", ".pkl", ".pickle", ".joblib"))]
    assert not bad, bad


def test_one_python_version_everywhere() -> None:
    version = (ROOT / ".python-version").read_text().strip()
    for step in STEPS:
        pv = ROOT / step / ".python-version"
        if pv.exists():
            assert pv.read_text().strip() == version, step
        dockerfile = ROOT / step / "Dockerfile"
        if dockerfile.exists():
            assert f"python:{version}-" in dockerfile.read_text(), step


def test_step_locks_are_current() -> None:
    for folder in [ROOT, *(ROOT / s for s in STEPS)]:
        if (folder / "uv.lock").exists():
            result = subprocess.run(
                ["uv", "lock", "--check"], cwd=folder, capture_output=True, text=True
            )
            assert result.returncode == 0, f"{folder.name}: {result.stderr}"
