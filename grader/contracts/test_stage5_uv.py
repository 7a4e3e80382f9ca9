"""Stage 5 (uv): the service is a uv project whose uv.lock matches pyproject.toml, with
scikit-learn locked at the version that pickled the model (a mismatch is explained)."""

from __future__ import annotations

from pathlib import Path

from grader.checks import check, expect, fail
from grader.contracts.common import pinned_version, trained
from grader.grading.session import Grading
from grader.submission.picklescan import sklearn_versions

NEEDED = ("scikit-learn", "fastapi", "uvicorn")


@check("5.1", "pyproject.toml, uv.lock and .python-version are there", points=1)
def test_project_files(grading: Grading) -> None:
    missing = [
        n
        for n in ("pyproject.toml", "uv.lock", ".python-version")
        if grading.submitted_file(n) is None
    ]
    expect(
        not missing,
        f"missing {', '.join(missing)}: run `uv init` (pyproject.toml, "
        ".python-version) and `uv lock` (uv.lock), and submit all three",
    )


@check("5.2", "uv.lock is consistent with pyproject.toml (uv lock --check)", points=2)
def test_lock_check(grading: Grading) -> None:
    expect(
        grading.submitted_file("uv.lock"),
        "not checked because 5.1 failed: there is no uv.lock to check",
    )
    problem = grading.locked_env.problem
    expect(
        not problem,
        f"{problem}\nThe grader ran your code with its own packages instead. "
        "Lock packages that have wheels for Linux and your Python (`uv lock`), "
        "from PyPI",
    )
    run = grading.uv_lock_check
    if run is None:
        fail("uv is not installed where the grader runs, so uv.lock cannot be checked")
    expect(
        run.ok,
        "uv.lock is out of date with pyproject.toml (`uv lock --check` failed): run "
        f"`uv lock` after changing dependencies and submit both files.\n{run.tail(6)}",
    )


@check("5.3", "pyproject.toml declares the service's dependencies", points=1)
def test_dependencies(grading: Grading) -> None:
    pyproject = grading.submitted_toml("pyproject.toml")
    expect(pyproject is not None, "there is no pyproject.toml")
    assert pyproject is not None
    project = pyproject.get("project", {})
    deps = project.get("dependencies", []) if isinstance(project, dict) else []
    names = {str(d).split(";")[0].split("[")[0].strip() for d in deps}
    names = {
        n.split("=")[0].split(">")[0].split("<")[0].split("~")[0].split("!")[0].strip()
        for n in names
    }
    names = {m.lower() for m in names}
    # A service that scores an ONNX export needs onnxruntime instead of scikit-learn (step 09).
    missing = [
        n for n in NEEDED if n not in names and not (n == "scikit-learn" and "onnxruntime" in names)
    ]
    expect(not missing, f"[project].dependencies lacks {missing}: `uv add {' '.join(missing)}`")
    grading.train  # noqa: B018 - tells whether the lock lacks what train.py imports
    module = grading.missing_module
    expect(
        module is None,
        f"train.py imports `{module}`, which your uv.lock does not install (the grader runs "
        f"train.py in the environment uv.lock describes): `uv add {module}` (or `uv add --dev "
        f"{module}` if only train.py needs it); the grader trained with its own packages "
        "instead",
    )


def _pickles(grading: Grading) -> tuple[str, list[Path]]:
    """The pickles that ship: the submitted ones if any, else the ones train.py wrote here."""
    names = ("model.bin", "pipeline.bin")
    submitted = [p for n in names if (p := grading.submitted_file(n)) is not None]
    if submitted:
        return "submitted", submitted
    trained(grading)
    scratch = grading.scratch
    return "trained", [scratch / n for n in names if (scratch / n).is_file()]


@check("5.4", "scikit-learn is locked at the version that pickled the model", points=2)
def test_sklearn_version(grading: Grading) -> None:
    locked = pinned_version(grading, "scikit-learn")
    expect(
        locked,
        "uv.lock does not lock scikit-learn: `uv add scikit-learn==<version>` with "
        "the version that trained your model",
    )
    origin, paths = _pickles(grading)
    expect(paths, "no model.bin or pipeline.bin to compare with: run train.py")
    if origin == "trained" and grading.locked_env.python is None:
        return  # trained with the grader's packages (the lock is missing or broken: 5.1/5.2)
    for path in paths:
        try:
            versions = sklearn_versions(path)
        except ValueError as e:
            fail(str(e))
        for version in sorted(versions):
            expect(
                version == locked,
                f"{path.name} was written by scikit-learn {version}, your uv.lock pins "
                f"{locked}. A pickle is only safe to load with the version that wrote it "
                f"(scikit-learn warns InconsistentVersionWarning, or fails): retrain with "
                f"`uv run python train.py` so the locked {locked} writes it, or pin the "
                f"version that trained it: `uv add scikit-learn=={version}`",
            )
