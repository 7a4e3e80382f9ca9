"""Broken variants of the lessons, built from copies: each loses exactly the points it should,
with a message that names the fix."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import grader_variants as variants
from tests.grader_helpers import failed, grade, lost, max_score, service_folder, status
from tests.support import data_env, free_port, server, two_at_a_time

pytestmark = pytest.mark.slow

CREDIT = ("--spec", "credit")


def _variant(name: str) -> Callable[[Path], Path]:
    return lambda tmp: variants.build(name, tmp)


# name: (how to build the submission, grade arguments); graded two at a time, once a module
GRADINGS: dict[str, tuple[Callable[[Path], Path], tuple[str, ...]]] = {
    "lax-numbers": (_variant("lax-numbers"), (*CREDIT, "--stage", "4", "--only", "4")),
    "owner-as-str": (_variant("owner-as-str"), (*CREDIT, "--stage", "4", "--only", "4")),
    "pickle-version": (_variant("pickle-version"), (*CREDIT, "--stage", "5", "--only", "5")),
    "lock-without-pandas": (_variant("lock-without-pandas"), (*CREDIT, "--stage", "5")),
    "foreign-pickle": (_variant("foreign-pickle"), ("--stage", "5", "--only", "5")),
    "missing-lock": (_variant("missing-lock"), (*CREDIT, "--stage", "5", "--only", "5")),
    "stale-lock": (_variant("stale-lock"), (*CREDIT, "--stage", "5", "--only", "5")),
    **{
        name: (_variant(name), (*CREDIT, "--stage", "6", "--only", "6", "--engine", "none"))
        for name in ("docker-loopback", "docker-root")
    },
    "fly-wrong-port": (_variant("fly-wrong-port"), (*CREDIT, "--stage", "7", "--only", "7")),
    "fly-bool-autostop": (_variant("fly-bool-autostop"), (*CREDIT, "--stage", "7", "--only", "7")),
    "misspelt-dependency": (
        _variant("misspelt-dependency"),
        (*CREDIT, "--stage", "5", "--only", "5"),
    ),
    "uv-init-workspace": (_variant("uv-init-workspace"), (*CREDIT, "--stage", "5", "--only", "5")),
    **{  # before: 3.5 passed with seed 1 and failed with seed 12345
        f"wrong-bound-seed-{seed}": (
            _variant("wrong-bound"),
            (*CREDIT, "--only", "3", "--seed", seed),
        )
        for seed in ("1", "12345")
    },
    "never-listens": (
        _variant("never-listens"),
        ("--stage", "3", "--only", "3", "--start-seconds", "8"),
    ),
    "kills-its-loader": (_variant("kills-its-loader"), ("--stage", "4")),
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[int, dict[str, Any]]]:
    """(exit code, results.json) of every grading above, two at a time (CI time)."""

    folders = {name: tmp_path_factory.mktemp(name) for name in GRADINGS}

    def one(name: str) -> tuple[int, dict[str, Any]]:
        build, args = GRADINGS[name]
        code, results, _ = grade(build(folders[name]), *args)
        return code, results

    return two_at_a_time(one, GRADINGS)


def test_500_on_bad_input(graded: dict[str, tuple[int, dict[str, Any]]]) -> None:
    """A number without bounds or allow_inf_nan=False: "Infinity" reaches scikit-learn (500);
    4.6 says so, with the server's traceback under it."""
    code, results = graded["lax-numbers"]
    assert code == 1
    problems = failed(results)
    assert set(problems) == {"4.6"} and lost(results) == 1
    assert "'Infinity'" in problems["4.6"] and "allow_inf_nan=False" in problems["4.6"]
    assert "--- last server output ---" in problems["4.6"]
    assert "ValueError: Input X contains infinity" in problems["4.6"]  # the cause, logged


def test_no_422_for_unknown_category(graded: dict[str, tuple[int, dict[str, Any]]]) -> None:
    code, results = graded["owner-as-str"]
    assert code == 1
    problems = failed(results)
    assert {"4.4", "4.7"} <= set(problems) <= {"4.4", "4.7", "4.9", "4.50"}
    assert "Literal" in problems["4.4"] and "`owner`" in problems["4.7"]


def test_model_pickled_by_another_sklearn(graded: dict[str, tuple[int, dict[str, Any]]]) -> None:
    code, results = graded["pickle-version"]
    assert code == 1
    problems = failed(results)
    assert set(problems) == {"5.4"} and lost(results) == 2
    assert "was written by scikit-learn 1.6.1, your uv.lock pins 1.9.1" in problems["5.4"]


def test_lock_that_lacks_what_train_imports(
    graded: dict[str, tuple[int, dict[str, Any]]],
) -> None:
    """train.py runs in the environment uv.lock describes; pandas is not in it: 5.3 says so,
    once, and the grader trains with its own packages so that nothing else is charged."""
    _, results = graded["lock-without-pandas"]
    problems = failed(results)
    assert set(problems) == {"5.3"} and lost(results) == 1, problems
    assert "train.py imports `pandas`, which your uv.lock does not install" in problems["5.3"]


def test_submitted_pickle_of_another_sklearn(
    graded: dict[str, tuple[int, dict[str, Any]]],
) -> None:
    """The pickle a student ships is checked, even if train.py would write a good one."""
    _, results = graded["foreign-pickle"]
    assert set(failed(results)) == {"5.4"}
    assert "scikit-learn 1.5.2, your uv.lock pins 1.9.1" in failed(results)["5.4"]


def test_missing_uv_lock(graded: dict[str, tuple[int, dict[str, Any]]]) -> None:
    """Charged where it is named: 5.1 (the file), 5.2 (nothing to check), 5.51 (the wheel's
    hash needs the lock); the version is still read from pyproject.toml's pin."""
    _, results = graded["missing-lock"]
    problems = failed(results)
    assert set(problems) == {"5.1", "5.2", "5.51"} and lost(results) == 4
    assert "uv lock" in problems["5.1"] and "not checked because 5.1 failed" in problems["5.2"]


def test_misspelt_dependency_is_named(graded: dict[str, tuple[int, dict[str, Any]]]) -> None:
    """pyproject.toml asks for `fastapii`: 5.2 names it (not a resolver dump about other
    Pythons and platforms) and the package it was meant to be; 5.3 says fastapi is missing."""
    _, results = graded["misspelt-dependency"]
    problems = failed(results)
    assert set(problems) == {"5.2", "5.3"}, problems
    assert "`fastapii` (misspelt? did you mean `fastapi`?)" in problems["5.2"]
    assert "other Python versions" not in problems["5.2"]
    assert "`fastapii`: misspelt?" in problems["5.3"]


def test_uv_init_without_no_workspace(graded: dict[str, tuple[int, dict[str, Any]]]) -> None:
    """The folder became a member of the repository's workspace: 5.1 says so and how to undo
    it (not only "run `uv lock`", which updates the repository's lock); 5.4 does not speak of
    a lock there is not."""
    _, results = graded["uv-init-workspace"]
    problems = failed(results)
    assert {"5.1", "5.2"} <= set(problems) <= {"5.1", "5.2", "5.50", "5.51"}, problems
    said = problems["5.1"]
    assert "member of the uv workspace of ../pyproject.toml" in said, said
    assert "git checkout -- pyproject.toml uv.lock" in said and "--bare --no-workspace" in said
    assert "not checked because 5.1 failed" in problems["5.2"]
    assert "5.4" not in problems


def test_one_wrong_bound_scores_the_same_whatever_the_seed(
    graded: dict[str, tuple[int, dict[str, Any]]],
) -> None:
    runs = [graded[f"wrong-bound-seed-{seed}"][1] for seed in ("1", "12345")]
    assert [set(failed(r)) for r in runs] == [{"3.5"}, {"3.5"}]
    assert runs[0]["score"] == runs[1]["score"]


def test_stale_uv_lock(graded: dict[str, tuple[int, dict[str, Any]]]) -> None:
    _, results = graded["stale-lock"]
    problems = failed(results)
    assert set(problems) == {"5.2"} and lost(results) == 2
    assert "out of date" in problems["5.2"] and "`uv lock`" in problems["5.2"]


@pytest.mark.parametrize(
    ("variant", "check", "fix"),
    [("docker-loopback", "6.7", "--host 0.0.0.0"), ("docker-root", "6.6", "USER app")],
)
def test_dockerfile_variants(
    graded: dict[str, tuple[int, dict[str, Any]]], variant: str, check: str, fix: str
) -> None:
    _, results = graded[variant]
    problems = failed(results)
    assert set(problems) == {check} and lost(results) == 1
    assert fix in problems[check]
    skipped = {t["extra_data"]["check"] for t in results["tests"] if status(t) == "skipped"}
    assert skipped >= {"6.9", "6.10"}, "build and run must be skipped without an engine"


@pytest.mark.container
@pytest.mark.parametrize(
    ("variant", "lost_checks", "fix"),
    [
        ("docker-loopback", {"6.7": 1, "6.10": 2}, "0.0.0.0"),
        ("docker-root", {"6.6": 1}, "USER app"),
    ],
)
def test_dockerfile_variants_built_and_run(
    tmp_path: Path, podman_engine: str, variant: str, lost_checks: dict[str, int], fix: str
) -> None:
    """With an engine the image is built and run (podman: what the variant costs does not
    depend on the engine; the reference is graded with Docker too, in test_homework): a root
    container still serves (only 6.6
    fails); one bound to 127.0.0.1 is unreachable, so 6.10 fails too, and says why."""
    folder = variants.build(variant, tmp_path)
    _, results, _ = grade(folder, "--spec", "credit", "--stage", "6", "--only", "6",
                          "--engine", podman_engine, "--docker")  # fmt: skip
    problems = failed(results)
    assert set(problems) == set(lost_checks), problems
    assert lost(results) == sum(lost_checks.values())
    assert all(fix in problems[c] for c in lost_checks), problems
    assert not [t for t in results["tests"] if status(t) == "skipped"]


@contextlib.contextmanager
def live_service(folder: Path) -> Iterator[str]:
    """A local uvicorn standing in for the fly.io deployment (there is no fly.io here)."""
    subprocess.run([sys.executable, "train.py"], cwd=folder, env=data_env(), check=True,
                   capture_output=True)  # fmt: skip
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "uvicorn", "predict:app", "--port", str(port)]
    with server(cmd, folder, f"{url}/ping"):
        yield url


def test_fly_internal_port_and_live_url(tmp_path: Path) -> None:
    folder = service_folder(tmp_path)
    with live_service(folder) as url:
        _, good, _ = grade(folder, "--stage", "7", "--only", "7", "--url", url)
    assert not failed(good) and good["score"] == max_score(good) == 9


def test_fly_internal_port(graded: dict[str, tuple[int, dict[str, Any]]]) -> None:
    _, results = graded["fly-wrong-port"]
    problems = failed(results)
    assert set(problems) == {"7.2"} and lost(results) == 2
    assert "internal_port = 9696" in problems["7.2"]


def test_fly_toml_as_flyctl_reads_it(graded: dict[str, tuple[int, dict[str, Any]]]) -> None:
    """auto_stop_machines = true: the schema lists strings only, flyctl takes the boolean."""
    _, results = graded["fly-bool-autostop"]
    assert not failed(results)


def test_app_that_never_listens(graded: dict[str, tuple[int, dict[str, Any]]]) -> None:
    code, results = graded["never-listens"]
    assert code == 1
    problems = failed(results)
    assert set(problems) == {"3.1", "3.2", "3.3", "3.4", "3.5"} and lost(results) == 19
    assert "did not listen on port 9696 within" in problems["3.1"]
    assert {problems[c] for c in ("3.2", "3.3", "3.4", "3.5")} == {"not checked because 3.1 failed"}


def test_pickle_that_kills_its_loader(graded: dict[str, tuple[int, dict[str, Any]]]) -> None:
    """model.bin would abort the process that unpickles it: the grader refuses to load it (its
    unpickler loads estimators and arrays only) and says what it refers to; the server (forked
    from the same warm probe process) still answers."""
    code, results = graded["kills-its-loader"]
    assert code == 1
    problems = failed(results)
    assert {"1.2", "1.3", "1.4"} <= set(problems), problems
    assert "could not be loaded" in problems["1.2"] and "posix.abort" in problems["1.2"]
    passed = {t["extra_data"]["check"] for t in results["tests"] if status(t) == "passed"}
    assert {"1.1", "3.1", "3.2", "3.3", "4.1", "4.6", "4.7"} <= passed, problems


@pytest.mark.container
@pytest.mark.parametrize(
    ("variant", "problem"),
    [("missing-ping", None), ("hard-coded", "does not depend on the request")],
)
def test_container_checks_what_it_can(
    tmp_path: Path, podman_engine: str, variant: str, problem: str | None
) -> None:
    """6.10 tries /predict even without /ping (charged in 3.2 only), and sees that a
    hard-coded answer ignores the request."""
    folder = variants.build(variant, tmp_path)
    _, results, _ = grade(folder, "--spec", "credit", "--stage", "6", "--only", "6",
                          "--engine", podman_engine, "--docker")  # fmt: skip
    problems = failed(results)
    if problem is None:
        assert not problems, problems
    else:
        assert set(problems) == {"6.10"} and problem in problems["6.10"], problems
