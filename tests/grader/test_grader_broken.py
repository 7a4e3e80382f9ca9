"""Broken variants of the lessons, built from copies: each loses exactly the points it should,
with a message that names the fix."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grader_variants as variants
import pytest
from grader_helpers import failed, grade, lost, service_folder
from support import copy_step, data_env, free_port, server

pytestmark = pytest.mark.slow


def test_500_on_bad_input(tmp_path: Path) -> None:
    """A number without bounds or allow_inf_nan=False: "Infinity" reaches scikit-learn (500);
    4.6 says so, with the server's traceback under it."""
    folder = variants.build("lax-numbers", tmp_path)
    code, results, _ = grade(folder, "--spec", "credit", "--stage", "4", "--only", "4")
    assert code == 1
    problems = failed(results)
    assert set(problems) == {"4.6"} and lost(results) == 1
    assert "'Infinity'" in problems["4.6"] and "allow_inf_nan=False" in problems["4.6"]
    assert "--- last server output ---" in problems["4.6"]
    assert "ValueError: Input X contains infinity" in problems["4.6"]  # the cause, logged


def test_no_422_for_unknown_category(tmp_path: Path) -> None:
    folder = variants.build("owner-as-str", tmp_path)
    code, results, _ = grade(folder, "--spec", "credit", "--stage", "4", "--only", "4")
    assert code == 1
    problems = failed(results)
    assert {"4.4", "4.7"} <= set(problems) <= {"4.4", "4.7", "4.9", "4.50"}
    assert "Literal" in problems["4.4"] and "`owner`" in problems["4.7"]


def test_model_pickled_by_another_sklearn(tmp_path: Path) -> None:
    folder = variants.build("pickle-version", tmp_path)
    code, results, _ = grade(folder, "--spec", "credit", "--stage", "5", "--only", "5")
    assert code == 1
    problems = failed(results)
    assert set(problems) == {"5.4"} and lost(results) == 2
    assert "was written by scikit-learn 1.6.1, your uv.lock pins 1.9.1" in problems["5.4"]


def test_lock_that_lacks_what_train_imports(tmp_path: Path) -> None:
    """train.py runs in the environment uv.lock describes; pandas is not in it: 5.3 says so,
    once, and the grader trains with its own packages so that nothing else is charged."""
    folder = variants.build("lock-without-pandas", tmp_path)
    _, results, _ = grade(folder, "--spec", "credit", "--stage", "5")
    problems = failed(results)
    assert set(problems) == {"5.3"} and lost(results) == 1, problems
    assert "train.py imports `pandas`, which your uv.lock does not install" in problems["5.3"]


def test_submitted_pickle_of_another_sklearn(tmp_path: Path) -> None:
    """The pickle a student ships is checked, even if train.py would write a good one."""
    folder = copy_step("05-uv", tmp_path)
    code = (
        "import pickle, sklearn.base; sklearn.base.__version__ = '1.5.2';"
        "from sklearn.linear_model import LogisticRegression;"
        "pickle.dump(LogisticRegression(), open('pipeline.bin', 'wb'))"
    )
    subprocess.run([sys.executable, "-c", code], cwd=folder, check=True)
    _, results, _ = grade(folder, "--stage", "5", "--only", "5")
    assert set(failed(results)) == {"5.4"}
    assert "scikit-learn 1.5.2, your uv.lock pins 1.9.1" in failed(results)["5.4"]


def test_missing_uv_lock(tmp_path: Path) -> None:
    """Charged where it is named: 5.1 (the file), 5.2 (nothing to check), 5.51 (the wheel's
    hash needs the lock); the version is still read from pyproject.toml's pin."""
    folder = variants.build("missing-lock", tmp_path)
    _, results, _ = grade(folder, "--spec", "credit", "--stage", "5", "--only", "5")
    problems = failed(results)
    assert set(problems) == {"5.1", "5.2", "5.51"} and lost(results) == 4
    assert "uv lock" in problems["5.1"] and "not checked because 5.1 failed" in problems["5.2"]


def test_stale_uv_lock(tmp_path: Path) -> None:
    folder = variants.build("stale-lock", tmp_path)
    _, results, _ = grade(folder, "--spec", "credit", "--stage", "5", "--only", "5")
    problems = failed(results)
    assert set(problems) == {"5.2"} and lost(results) == 2
    assert "out of date" in problems["5.2"] and "`uv lock`" in problems["5.2"]


@pytest.mark.parametrize(
    ("variant", "check", "fix"),
    [("docker-loopback", "6.7", "--host 0.0.0.0"), ("docker-root", "6.6", "USER app")],
)
def test_dockerfile_variants(tmp_path: Path, variant: str, check: str, fix: str) -> None:
    folder = variants.build(variant, tmp_path)
    _, results, _ = grade(folder, "--spec", "credit", "--stage", "6", "--only", "6",
                          "--engine", "none")  # fmt: skip
    problems = failed(results)
    assert set(problems) == {check} and lost(results) == 1
    assert fix in problems[check]
    skipped = {t["extra_data"]["check"] for t in results["tests"] if t["status"] == "skipped"}
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
    tmp_path: Path, container_engine: str, variant: str, lost_checks: dict[str, int], fix: str
) -> None:
    """With an engine the image is built and run: a root container still serves (only 6.6
    fails); one bound to 127.0.0.1 is unreachable, so 6.10 fails too, and says why."""
    folder = variants.build(variant, tmp_path)
    _, results, _ = grade(folder, "--spec", "credit", "--stage", "6", "--only", "6",
                          "--engine", container_engine, "--docker")  # fmt: skip
    problems = failed(results)
    assert set(problems) == set(lost_checks), problems
    assert lost(results) == sum(lost_checks.values())
    assert all(fix in problems[c] for c in lost_checks), problems
    assert not [t for t in results["tests"] if t["status"] == "skipped"]


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
    assert not failed(good) and good["score"] == good["max_score"] == 9


def test_fly_internal_port(tmp_path: Path) -> None:
    folder = variants.build("fly-wrong-port", tmp_path)
    _, results, _ = grade(folder, "--spec", "credit", "--stage", "7", "--only", "7")
    problems = failed(results)
    assert set(problems) == {"7.2"} and lost(results) == 2
    assert "internal_port = 9696" in problems["7.2"]


def test_fly_toml_as_flyctl_reads_it(tmp_path: Path) -> None:
    """auto_stop_machines = true: the schema lists strings only, flyctl takes the boolean."""
    folder = variants.build("fly-bool-autostop", tmp_path)
    _, results, _ = grade(folder, "--spec", "credit", "--stage", "7", "--only", "7")
    assert not failed(results)


def test_app_that_never_listens(tmp_path: Path) -> None:
    folder = copy_step("03-fastapi", tmp_path)
    predict = folder / "predict.py"
    predict.write_text("import time\ntime.sleep(3600)\n" + predict.read_text())
    code, results, _ = grade(folder, "--stage", "3", "--only", "3", "--start-seconds", "8")
    assert code == 1
    problems = failed(results)
    assert set(problems) == {"3.1", "3.2", "3.3", "3.4", "3.5"} and lost(results) == 8
    assert "did not listen on port 9696 within" in problems["3.1"]


def test_pickle_that_kills_its_loader(tmp_path: Path) -> None:
    """model.bin aborts the process that unpickles it: the model checks fail with the reason;
    the server (forked from the same warm probe process) still answers."""
    folder = copy_step("04-pydantic", tmp_path)
    train = folder / "train.py"
    train.write_text(
        train.read_text()
        + "\n\nimport os as _os\n\n\nclass _Abort:\n    def __reduce__(self):\n"
        + "        return (_os.abort, ())\n\n\n"
        + "with open('model.bin', 'wb') as _f:\n    pickle.dump(_Abort(), _f)\n"
    )
    code, results, _ = grade(folder, "--stage", "4")
    assert code == 1
    problems = failed(results)
    assert {"1.2", "1.3", "1.4"} <= set(problems), problems
    assert "SIGABRT" in problems["1.2"]
    passed = {t["extra_data"]["check"] for t in results["tests"] if t["status"] == "passed"}
    assert {"1.1", "3.1", "3.2", "3.3", "4.1", "4.6", "4.7"} <= passed, problems


@pytest.mark.container
@pytest.mark.parametrize(
    ("variant", "problem"),
    [("missing-ping", None), ("hard-coded", "does not depend on the request")],
)
def test_container_checks_what_it_can(
    tmp_path: Path, container_engine: str, variant: str, problem: str | None
) -> None:
    """6.10 tries /predict even without /ping (charged in 3.2 only), and sees that a
    hard-coded answer ignores the request."""
    folder = variants.build(variant, tmp_path)
    _, results, _ = grade(folder, "--spec", "credit", "--stage", "6", "--only", "6",
                          "--engine", container_engine, "--docker")  # fmt: skip
    problems = failed(results)
    if problem is None:
        assert not problems, problems
    else:
        assert set(problems) == {"6.10"} and problem in problems["6.10"], problems
