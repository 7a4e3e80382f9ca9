"""Stage 5 (uv): the service is a uv project whose uv.lock matches pyproject.toml, with
scikit-learn locked at the version that pickled the model (a mismatch is explained)."""

from __future__ import annotations

import os
from pathlib import Path

from grader.checks import check, expect, fail
from grader.contracts.common import caused, pinned_version, trained
from grader.grading.session import Grading
from grader.submission import lockfile
from grader.submission.picklescan import sklearn_versions

NEEDED = ("scikit-learn", "fastapi", "uvicorn")
# Names a student of this course may misspell (besides what their uv.lock locks).
KNOWN = frozenset({*NEEDED, "pandas", "pydantic", "numpy", "requests", "onnxruntime"})


def _workspace_advice(grading: Grading) -> str:
    """Why a folder with a pyproject.toml has no uv.lock, when `uv init` without
    --no-workspace is the likely cause: what happened and how to undo it."""
    if grading.submitted_file("pyproject.toml") is None:
        return ""
    undo = (
        "restore the repository's pyproject.toml and uv.lock (`git checkout -- "
        "pyproject.toml uv.lock` at its root), delete this folder's pyproject.toml, then here "
        "`uv init --bare --no-workspace`, `uv add` your dependencies again, and `uv lock`"
    )
    above = lockfile.workspace_above(grading.submission)
    if above is not None:
        where = os.path.relpath(above, grading.submission)
        return (
            f"\n`uv init` without `--no-workspace` made this folder a member of the uv "
            f"workspace of {where}: `uv add` and `uv lock` changed that project's files, "
            f"not this folder's. To undo it: {undo}"
        )
    if grading.submitted_file(".python-version") is None:
        return (
            "\nIf `uv lock` wrote no uv.lock in this folder, `uv init` without "
            "`--no-workspace` made it a member of the repository's uv workspace (`uv add` and "
            f"`uv lock` then change the repository's files instead). To undo it: {undo}"
        )
    return ""


@check("5.1", "pyproject.toml, uv.lock and .python-version are there", points=1)
def test_project_files(grading: Grading) -> None:
    missing = [
        n
        for n in ("pyproject.toml", "uv.lock", ".python-version")
        if grading.submitted_file(n) is None
    ]
    if "uv.lock" in missing:
        grading.causes.charge("lock")  # 5.2, 5.51 cannot be checked: they say so in one line
    expect(
        not missing,
        f"missing {', '.join(missing)}: run `uv init --bare --no-workspace` (pyproject.toml, "
        ".python-version) and `uv lock` (uv.lock), and submit all three"
        + (_workspace_advice(grading) if "uv.lock" in missing else ""),
    )


def _unlocked(grading: Grading) -> str:
    """What pyproject.toml asks for that uv.lock does not lock, named ("" if nothing)."""
    try:
        pyproject = grading.submitted_toml("pyproject.toml")
    except Exception:  # an unreadable pyproject.toml: uv's own words below
        return ""
    names = lockfile.unlocked(pyproject, grading.lock)
    known = lockfile.locked_names(grading.lock) | KNOWN
    said = []
    for name in names:
        close = lockfile.meant(name, known)
        said.append(f"`{name}`" + (f" (misspelt? did you mean `{close}`?)" if close else ""))
    if not said:
        return ""
    return (
        f"pyproject.toml asks for {', '.join(said)}, which uv.lock does not lock. Correct the "
        "name if it is misspelt (`uv lock` fails for a package that does not exist)"
    )


@check("5.2", "uv.lock is consistent with pyproject.toml (uv lock --check)", points=2)
def test_lock_check(grading: Grading) -> None:
    if grading.submitted_file("uv.lock") is None:
        caused(grading, "lock", "there is no uv.lock to check (`uv lock` writes it)")
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
    if not run.ok:
        named = _unlocked(grading)
        detail = f"{named}, then run `uv lock`" if named else f"run `uv lock`\n{run.tail(6)}"
        fail(
            "uv.lock is out of date with pyproject.toml (`uv lock --check` failed): "
            f"submit both files after changing dependencies. {detail}"
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
    typos = [f"`{n}`" for n in sorted(names) if lockfile.meant(n, set(missing))]
    typo = f" (it has {', '.join(typos)}: misspelt?)" if typos else ""
    expect(
        not missing,
        f"[project].dependencies lacks {missing}{typo}: `uv add {' '.join(missing)}`",
    )
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
    has_lock = grading.submitted_file("uv.lock") is not None
    if not locked and not has_lock:
        caused(
            grading,
            "lock",
            "there is no uv.lock, and pyproject.toml pins no exact scikit-learn version: "
            "`uv add scikit-learn==<version>` with the version that trained your model",
        )
    expect(
        locked,
        "uv.lock does not lock scikit-learn: `uv add scikit-learn==<version>` with "
        "the version that trained your model",
    )
    pins = "your uv.lock pins" if has_lock else "your pyproject.toml pins"
    no_lock = "" if has_lock else " (there is no uv.lock)"
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
                f"{path.name} was written by scikit-learn {version}, {pins} "
                f"{locked}{no_lock}. A pickle is only safe to load with the version that wrote it "
                f"(scikit-learn warns InconsistentVersionWarning, or fails): retrain with "
                f"`uv run python train.py` so that {locked} writes it, or pin the "
                f"version that trained it: `uv add scikit-learn=={version}`",
            )
