"""The grader where bubblewrap cannot start: inside an unprivileged container, as Gradescope
runs its autograders (a Docker container, root inside, no user namespaces: `bwrap: Creating new
namespace failed: Operation not permitted`, measured here with podman and Docker alike).

There a grading that needs the sandbox refuses to start; with --no-sandbox it runs student code
as an unprivileged uid of its own, which cannot read the seed file, write the results or the
grader, see the seed on any command line, or leave a process behind; every report says so
first."""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path

import pytest

from grader.environment import real_uv
from tests.support import ROOT, dataset

STUDENT = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    print("UID", os.getuid(), flush=True)
    for path in ["/autograder/source/seed.txt", "/autograder/results/x", "/opt/grader/bin/x"]:
        try:
            Path(path).write_text("x") if "seed" not in path else Path(path).read_text()
            print("ALLOWED", path, flush=True)
        except OSError as e:
            print("DENIED", path, e.strerror, flush=True)
    seen = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            seen.append(cmdline.read_bytes())
        except OSError:
            pass
    print("SEED-SEEN" if any(b"424242" in c for c in seen) else "SEED-NOT-SEEN", flush=True)
    if os.fork() == 0:  # a daemon meant to outlive the grading: it beats while it lives
        os.setsid()
        if os.fork() == 0:
            for _ in range(600):
                Path("/marks/beat").write_text(repr(time.time()))
                time.sleep(0.2)
            os._exit(0)
        os._exit(0)
    sys.exit(1)
""")

SCRIPT = r"""
set -u
export UV_PROJECT_ENVIRONMENT=/opt/grader UV_CACHE_DIR=/uv-cache UV_PYTHON_DOWNLOADS=never
export UV_LINK_MODE=copy CREDIT_DATA=/data/credit.csv
mkdir -p /autograder/results /marks && chmod 0777 /marks
cd /src
uv sync --frozen --group grader --no-install-project -q || { echo "SYNC-FAILED"; exit 90; }
run() { /opt/grader/bin/python -m grader.cli "$@"; }
echo "== doctor"; /opt/grader/bin/python -m grader.cli doctor; echo "DOCTOR-RC $?"
echo "== required"
run /student --spec credit --stage 1 --seed-file /autograder/source/seed.txt --require-sandbox
echo "REQUIRED-RC $?"
echo "== no sandbox"
run /student --spec credit --stage 1 --seed-file /autograder/source/seed.txt --no-sandbox \
  --json /autograder/results/results.json
echo "NO-SANDBOX-RC $?"
ended=$(date +%s.%N)
sleep 3
cat /autograder/results/results.json
echo
echo "ENDED $ended LAST-BEAT $(cat /marks/beat)"
"""


@pytest.mark.slow
@pytest.mark.container
def test_in_an_unprivileged_container_the_grader_refuses_or_degrades_safely(
    container_engine: str, tmp_path: Path
) -> None:
    uv = real_uv()
    assert uv is not None
    student = tmp_path / "student"
    student.mkdir()
    (student / "train.py").write_text(STUDENT)
    cache = tmp_path / "uv-cache"
    cache.mkdir()
    seed = tmp_path / "seed.txt"  # mounted: no command line of the container holds it
    seed.write_text("424242\n")
    seed.chmod(0o600)
    mounts = [
        f"{ROOT}:/src:ro", f"{uv}:/usr/local/bin/uv:ro", f"{student}:/student:ro",
        f"{dataset('CREDIT_DATA')}:/data/credit.csv:ro", f"{cache}:/uv-cache",
        "/usr/bin/bwrap:/usr/bin/bwrap:ro", f"{seed}:/autograder/source/seed.txt:ro",
    ]  # fmt: skip
    command = [container_engine, "run", "--rm", *(a for m in mounts for a in ("-v", m)),
               "python:3.13-slim-bookworm", "bash", "-c", SCRIPT]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=1200, check=False)
    out = done.stdout
    assert "SYNC-FAILED" not in out and done.returncode == 0, out + done.stderr[-3000:]
    assert "bwrap: Creating new namespace failed" in out or "Operation not permitted" in out, out
    assert "REQUIRED-RC 4" in out, out
    assert "NO-SANDBOX-RC 1" in out, out
    results = json.loads(out.split("\n{", 1)[1].rsplit("}", 1)[0].join("{}"))  # Gradescope's
    assert results["output"].startswith("WARNING: graded WITHOUT the sandbox (--no-sandbox)")
    tail = results["tests"][0]["output"]
    assert "UID 0" not in tail and "UID " in tail, tail
    # (results.json shows the grader's Python as <python>: no path of the grading machine)
    for path in ("/autograder/source/seed.txt", "/autograder/results/x", "<python>/bin/x"):
        assert f"DENIED {path}" in tail, tail
    assert "SEED-NOT-SEEN" in tail and "424242" not in out, tail
    ended, last_beat = (float(w) for w in out.rsplit("ENDED ", 1)[1].split(" LAST-BEAT "))
    assert last_beat <= ended + 0.5, "a process of the submission outlived its grading"
