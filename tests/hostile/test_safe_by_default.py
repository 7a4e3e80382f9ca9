"""The grader safe by default: nothing a student installed runs beside the secrets, pickles
are read from an allowlist, shared folders are used only while they are the grader's own, no
grading goes on unprotected unless told, and student code never runs as root."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import pickle
import pickletools
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from grader import options, preflight
from grader.environment import install, real_uv, trust
from grader.environment.install import shared_root
from grader.grading import probe
from grader.probes import model_probe
from grader.sandbox import Sandbox, bwrap_available, owned
from grader.sandbox.uids import SandboxUid
from tests.support import ROOT, data_env

SANDBOXED = bwrap_available() is not None
AS_ROOT = os.geteuid() == 0


# -- 1. code installed by the lock never runs in the probe -----------------------------------
PTH_PAYLOAD = "import sys; print('PTH-RAN', flush=True)\n"
# In the probe (the process holding the secrets: probe.py, at its start) it would end the
# grading of stages 1-4. The server child, forked from the probe once it imported uvicorn,
# runs it as any interpreter of the environment would.
SITECUSTOMIZE = """import os, sys
print("SITECUSTOMIZE-RAN", flush=True)
if b"probe.py" in open("/proc/self/cmdline", "rb").read() and "uvicorn" not in sys.modules:
    os._exit(7)
"""


def sneaky_wheel(folder: Path) -> Path:
    """A wheel, built here, that ships a .pth file and a sitecustomize.py: what any package on
    PyPI could ship, and a student could lock."""
    files = {
        "sneaky.pth": "import sneaky_payload\n",
        "sneaky_payload.py": PTH_PAYLOAD,
        "sitecustomize.py": SITECUSTOMIZE,
        "sneaky-0.1.dist-info/METADATA": "Metadata-Version: 2.1\nName: sneaky\nVersion: 0.1\n",
        "sneaky-0.1.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: hand\nRoot-Is-Purelib: "
        "true\nTag: py3-none-any\n",
    }
    record = []
    for name, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record.append(f"{name},sha256={digest.decode()},{len(text.encode())}")
    files["sneaky-0.1.dist-info/RECORD"] = "\n".join([*record, "sneaky-0.1.dist-info/RECORD,,"])
    wheel = folder / "sneaky-0.1-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        for name, text in files.items():
            z.writestr(name, text)
    return wheel


def add_wheel(python: Path, wheel: Path) -> None:
    uv = real_uv()
    assert uv is not None
    subprocess.run([uv, "pip", "install", "--python", str(python), "--no-deps", str(wheel)],
                   check=True, capture_output=True)  # fmt: skip


@pytest.mark.slow
@pytest.mark.skipif(not SANDBOXED, reason="needs bubblewrap")
def test_a_pth_file_and_sitecustomize_never_run_in_the_probe(tmp_path: Path) -> None:
    """The locked environment holds a wheel with a .pth file and a sitecustomize.py. A plain
    interpreter of that environment (train.py's, the server's) runs both; the probe runs
    neither, and answers."""
    submission = tmp_path / "student"
    shutil.copytree(ROOT / "solutions", submission, ignore=shutil.ignore_patterns("*.bin"))
    env = install(submission, real_uv(), shared=False, scratch=tmp_path)
    assert env.python is not None and env.trusted is not None, env.problem
    add_wheel(env.python, sneaky_wheel(tmp_path))
    visible = [probe.PROBES, *(p for p in (env.prefix, env.base_prefix()) if p is not None)]
    sandbox = Sandbox(submission, visible)
    try:
        plain = sandbox.run([str(env.python), "-c", "print('plain')"])
        process = probe.start(sandbox, str(env.python), env.trusted, {}, 120)
        model = {"records": [], "files": {"model": "model.bin"}}
        result, run = probe.ask(process, "n0nce", None, model, None)
    finally:
        sandbox.close()
        env.close()
    assert plain.ok and "PTH-RAN" in plain.stdout, plain.stdout + plain.stderr
    assert "SITECUSTOMIZE-RAN" in plain.stdout
    assert run.returncode == 0, run.stdout + run.stderr
    assert "PTH-RAN" not in run.stdout + run.stderr
    assert "SITECUSTOMIZE-RAN" not in run.stdout + run.stderr
    assert result["model"]["model"] == {"exists": False}


@pytest.mark.slow
@pytest.mark.skipif(not SANDBOXED, reason="needs bubblewrap")
def test_a_sneaky_wheel_in_the_lock_changes_no_score(tmp_path: Path) -> None:
    """The same wheel in the shared environment of the solution's lock: the grading, through
    stage 4, hidden checks included, scores what it scores without it."""
    env = {**data_env(), "TMPDIR": str(tmp_path)}
    command = [sys.executable, "-m", "grader.cli", str(ROOT / "solutions"), "--spec", "credit",
               "--stage", "4", "--quiet"]  # fmt: skip

    def grade() -> str:
        done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT,
                              timeout=900, check=False)  # fmt: skip
        assert done.returncode in (0, 1), done.stdout + done.stderr
        return done.stdout.strip().splitlines()[-1]

    before = grade()
    pythons = list((tmp_path / "grader-envs").glob("*/bin/python"))
    assert len(pythons) == 1, pythons
    add_wheel(pythons[0], sneaky_wheel(tmp_path))
    after = grade()
    got, _, out_of = before.removeprefix("Total: ").partition("/")
    assert got == out_of, f"the solution should score full marks: {before}"
    assert after == before


# -- 9. pickles that run code by indirect routes ----------------------------------------------
def raw_pickle(module: str, name: str, *args: str) -> bytes:
    """A protocol-0 pickle calling module.name(*args) (GLOBAL + REDUCE): what any crafted
    model.bin does, whatever route it takes."""
    body = f"c{module}\n{name}\n(" + "".join(f"V{a}\n" for a in args) + "tR."
    return body.encode()


INDIRECT = [
    ("posix", "system"), ("os", "system"), ("builtins", "eval"), ("builtins", "exec"),
    ("builtins", "getattr"), ("builtins", "__import__"), ("subprocess", "Popen"),
    ("functools", "partial"), ("operator", "attrgetter"), ("pickle", "loads"),
    ("numpy", "load"), ("numpy.testing._private.utils", "runstring"),
    ("sklearn.utils._testing", "assert_run_python_script_without_output"),
    ("sklearn.utils", "Bunch"), ("__main__", "Model"), ("train", "Model"),
    ("importlib", "import_module"), ("runpy", "run_path"), ("joblib", "load"),
]  # fmt: skip


@pytest.mark.parametrize(("module", "name"), INDIRECT)
def test_a_pickle_naming_anything_but_estimators_and_arrays_is_refused(
    tmp_path: Path, module: str, name: str
) -> None:
    path = tmp_path / "model.bin"
    path.write_bytes(raw_pickle(module, name, "touch " + str(tmp_path / "ran")))
    with pytest.raises(pickle.UnpicklingError, match=rf"refers to .*{name}"):
        model_probe.load(str(path))
    assert not (tmp_path / "ran").exists()
    result = model_probe.probe_model(str(path), [])
    assert "UnpicklingError" in result["error"] and "type" not in result


def test_code_nested_inside_an_estimator_is_refused(tmp_path: Path) -> None:
    """A real FunctionTransformer whose function is os.system, inside a Pipeline."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    path = tmp_path / "pipeline.bin"
    path.write_bytes(pickle.dumps(make_pipeline(FunctionTransformer(os.system))))
    with pytest.raises(pickle.UnpicklingError, match="system"):
        model_probe.load(str(path))


def test_honest_models_load(tmp_path: Path) -> None:
    import numpy as np
    from sklearn.feature_extraction import DictVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    records = [{"a": "x", "b": 1.0}, {"a": "y", "b": 2.0}, {"a": "x", "b": 3.0}]
    targets = [0, 1, 0]
    dv = DictVectorizer(sparse=False)
    model = LogisticRegression(random_state=np.random.RandomState(1))
    model.fit(dv.fit_transform(records), targets)
    pipeline = make_pipeline(
        DictVectorizer(), StandardScaler(with_mean=False), LogisticRegression()
    )
    pipeline.fit(records, targets)
    for protocol in (2, 4, 5):
        (tmp_path / "model.bin").write_bytes(pickle.dumps((dv, model), protocol=protocol))
        (tmp_path / "pipeline.bin").write_bytes(pickle.dumps(pipeline, protocol=protocol))
        result = model_probe.probe(
            {
                "records": records,
                "files": {
                    "model": str(tmp_path / "model.bin"),
                    "pipeline": str(tmp_path / "pipeline.bin"),
                },
            }
        )
        assert "error" not in result["model"] and "error" not in result["pipeline"], result
        assert result["pipeline"]["steps"][-1].endswith("LogisticRegression")
    ops = {op.name for op, _, _ in pickletools.genops(pickle.dumps(model, protocol=2))}
    assert "REDUCE" in ops  # the allowlist is what stands between REDUCE and any callable


# -- 2. shared folders planted by another user ------------------------------------------------
NOBODY = 65534


@pytest.fixture
def tmpdir_of_our_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    return tmp_path


@pytest.mark.skipif(not AS_ROOT, reason="planting a folder as another user needs root")
@pytest.mark.parametrize("how", ["other owner", "symlink", "world-writable"])
@pytest.mark.parametrize("folder", ["grader-envs", "grader-uids"])
def test_a_shared_folder_planted_by_another_user_is_refused(
    tmpdir_of_our_own: Path, how: str, folder: str
) -> None:
    path = tmpdir_of_our_own / folder
    if how == "symlink":
        (tmpdir_of_our_own / "elsewhere").mkdir()
        path.symlink_to(tmpdir_of_our_own / "elsewhere")
    else:
        path.mkdir()
        if how == "other owner":
            os.chown(path, NOBODY, NOBODY)
        else:
            path.chmod(0o777)
    verdict = preflight.check(options.Options(submission=ROOT / "solutions"))
    assert str(path) in verdict.refusal and "will not use" in verdict.refusal, verdict
    assert "rm -rf" in verdict.refusal  # and what to do
    with pytest.raises(owned.NotOurs):
        if folder == "grader-uids":
            SandboxUid()
        else:
            install(ROOT / "solutions", real_uv(), shared=True, scratch=None)


@pytest.mark.skipif(not AS_ROOT, reason="planting a file as another user needs root")
def test_a_planted_environment_is_never_run(tmpdir_of_our_own: Path) -> None:
    """Another user pre-creates grader-envs/<key of the course's lock>/bin/python with the
    completion mark, before the grader ever made grader-envs: the folder is refused."""
    root = shared_root()
    root.mkdir(mode=0o777)
    os.chown(root, NOBODY, NOBODY)
    with pytest.raises(owned.NotOurs, match="belongs to uid 65534"):
        install(ROOT / "solutions", real_uv(), shared=True, scratch=None)


def test_lock_files_are_never_followed(tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.write_text("precious")
    (tmp_path / "x.lock").symlink_to(target)
    with pytest.raises(OSError):
        owned.open_lock(tmp_path / "x.lock")
    assert target.read_text() == "precious"


def test_making_an_environment_readable_follows_no_symlink(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir(mode=0o700)
    venv = tmp_path / "venv"
    (venv / "lib").mkdir(parents=True)
    (venv / "lib" / "link").symlink_to(outside)
    owned.chmod_tree(venv)
    assert outside.stat().st_mode & 0o777 == 0o700
    assert (venv / "lib").stat().st_mode & 0o777 == 0o755


def test_the_trust_record_refuses_files_written_into_allowed_packages(tmp_path: Path) -> None:
    """A distribution that writes into sklearn/, or a file under it that no allowed RECORD
    names, or a changed one: sklearn is not imported by the probe, and the lock is refused."""
    site = tmp_path / "site-packages"

    def dist(name: str, files: dict[str, str]) -> None:
        info = site / f"{name}-1.0.dist-info"
        info.mkdir(parents=True)
        rows = []
        for path, text in files.items():
            (site / path).parent.mkdir(parents=True, exist_ok=True)
            (site / path).write_text(text)
            digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
            rows.append(f"{path},sha256={digest.decode()},{len(text)}")
        (info / "RECORD").write_text("\n".join(rows))

    dist("scikit_learn", {"sklearn/__init__.py": "x = 1\n"})
    dist("numpy", {"numpy/__init__.py": "y = 1\n"})
    assert trust.verify(site).modules == ("numpy", "sklearn")
    dist("evil", {"sklearn/evil.py": "import os\n"})
    verdict = trust.verify(site)
    assert verdict.modules == ("numpy",) and "evil also write into sklearn" in verdict.problems[0]
    (site / "numpy" / "extra.py").write_text("import os\n")
    assert "numpy/extra.py is in no allowed distribution's RECORD" in trust.verify(site).problems
    (site / "numpy" / "extra.py").unlink()
    (site / "numpy" / "__init__.py").write_text("y = 2\n")
    assert "numpy/__init__.py is not the file its RECORD names" in trust.verify(site).problems


def test_results_and_reports_round_trip_the_trust_record() -> None:
    record = trust.Trusted(Path("/x/site-packages"), ("numpy", "sklearn"), ("why",))
    assert trust.Trusted.from_json(record.to_json()) == record
    assert json.loads(record.to_json())["modules"] == ["numpy", "sklearn"]


# -- 4. no grading outside the sandbox unless told ---------------------------------------------
def _grade(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "grader.cli", *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=900, check=False,
                          env={**data_env(), "GRADER_NO_BWRAP": "1", **(env or {})})  # fmt: skip


@pytest.mark.parametrize(
    "args",
    [
        ["solutions", "--spec", "credit", "--stage", "1", "--seed", "5"],
        ["solutions", "--spec", "credit", "--stage", "1", "--require-sandbox"],
        ["batch", "solutions", "--out", "OUT", "--stage", "1"],
    ],
    ids=["seeded", "required", "batch"],
)
def test_without_bubblewrap_a_protected_grading_refuses_to_start(
    tmp_path: Path, args: list[str]
) -> None:
    args = [a.replace("OUT", str(tmp_path / "out")) for a in args]
    done = _grade(*args)
    assert done.returncode == 4, done.stdout + done.stderr
    said = done.stderr
    assert "refused" in said and "GRADER_NO_BWRAP" in said and "--no-sandbox" in said, said
    assert "grade setup" in said and "grade doctor" in said, said
    assert not (tmp_path / "out" / "students").exists()


def test_without_bubblewrap_the_seed_never_comes_on_a_command_line(tmp_path: Path) -> None:
    done = _grade("solutions", "--spec", "credit", "--stage", "1", "--seed", "5", "--no-sandbox")
    assert done.returncode == 4 and "--seed-file" in done.stderr, done.stderr
    seed = tmp_path / "seed.txt"
    seed.write_text("-12345\n")
    seed.chmod(0o644)
    done = _grade("solutions", "--spec", "credit", "--seed-file", str(seed), "--no-sandbox")
    assert done.returncode == 2 and "chmod 600" in done.stderr, done.stderr


# Student code run unprivileged and reaped without bubblewrap: test_unprivileged_container.py


# -- 10. the cohort report shows names and messages as text --------------------------------
def test_the_cohort_report_escapes_markdown_and_html(tmp_path: Path) -> None:
    from grader.batch import cohort
    from grader.results.report import FAILED, CheckResult, Report

    evil = "<img src=x onerror=alert(1)>[win](javascript:alert(1))|**x**"
    report = Report(f"/x/{evil}", "credit", 7, 0, "bubblewrap", warning="WARNING: no sandbox")
    report.checks = [CheckResult("1.1", "train.py runs", 1, 2, FAILED, f"crashed: {evil}")]
    text = cohort.write_report(tmp_path, {evil: report}).read_text()
    assert text.startswith("**WARNING: no sandbox**")
    import re

    assert "<img" not in text and not re.search(r"(?<!\\)\]\(javascript", text)
    assert not re.search(r"(?<!\\)\|\*\*x", text)
    assert "&lt;img src=x onerror=alert(1)>\\[win\\](javascript" in text
