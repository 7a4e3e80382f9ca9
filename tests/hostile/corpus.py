"""The hostile corpus: submissions that try to hang, exhaust, escape, spoof or crash the grader.

Each case starts from the same honest base (step 04's predict.py, a train.py that copies models
trained once by the test suite, so that a case costs seconds, not a training run) and breaks
one thing. `Case.expect_failed` are the checks that must fail, each with a message containing
`hint`; `expect_passed` are checks the broken thing must not take down with it.

Safety: every bomb is bounded by itself (process count, bytes, seconds) so that it cannot harm
the machine even where the sandbox is missing; the network case refuses to run unless it sees
no route at all (the sandbox's empty network namespace) and only tries a TEST-NET address.
"""

from __future__ import annotations

import os
import pickle
import random
import shutil
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

FAST_TRAIN = textwrap.dedent(
    '''
    """Stands in for training: copies the models the test suite trained once."""
    import shutil

    for name in ("model.bin", "pipeline.bin"):
        shutil.copyfile(f"trained/{name}", name)
    '''
)


@dataclass
class Context:
    """What a case may refer to: the host folder it must not touch, the grader's output."""

    host: Path  # canary files on the host; checksummed before/after
    out: Path  # where the grader writes results.json
    trained: Path  # a trained step folder (pipeline.bin, model.bin)
    marker: str  # unique per run, for canary paths under /tmp


@dataclass
class Case:
    name: str
    build: Callable[[Path, Context], None]
    args: list[str]  # grade arguments besides PATH, --spec, --json
    expect_failed: dict[str, str] = field(default_factory=dict)  # check id → hint in output
    expect_passed: list[str] = field(default_factory=list)
    needs_sandbox: bool = False  # only with bubblewrap (the bomb relies on its limits)
    folder_name: str = "student"
    budget: float = 240.0  # seconds the whole grading may take
    xfail: str = ""  # a known grader defect (docs/reliability.md): the test fails until fixed


def base(folder: Path, ctx: Context) -> None:
    """The honest submission every case starts from."""
    folder.mkdir(parents=True)
    shutil.copy2(ctx.trained / "predict.py", folder / "predict.py")
    (folder / "trained").mkdir()
    for name in ("model.bin", "pipeline.bin"):
        shutil.copy2(ctx.trained / name, folder / "trained" / name)
    (folder / "train.py").write_text(FAST_TRAIN)


def _prepend_train(folder: Path, code: str) -> None:
    path = folder / "train.py"
    path.write_text(textwrap.dedent(code) + path.read_text())


def _append(folder: Path, name: str, code: str) -> None:
    path = folder / name
    path.write_text(path.read_text() + "\n" + textwrap.dedent(code))


# -- the cases ----------------------------------------------------------------------------------
def honest(folder: Path, ctx: Context) -> None:
    base(folder, ctx)


def train_loops_forever(folder: Path, ctx: Context) -> None:
    base(folder, ctx)
    _prepend_train(folder, "while True:\n    pass\n")


def app_sleeps_at_import(folder: Path, ctx: Context) -> None:
    base(folder, ctx)
    path = folder / "predict.py"
    path.write_text("import time\n\ntime.sleep(3600)\n" + path.read_text())


def app_never_binds(folder: Path, ctx: Context) -> None:
    # The classic: uvicorn.run at module level, without `if __name__ == "__main__":`, on
    # another port. Importing predict blocks; the grader's port is never bound.
    base(folder, ctx)
    code = 'import uvicorn\n\nuvicorn.run(app, host="127.0.0.1", port=9697)\n'
    _append(folder, "predict.py", code)


def app_loopback_only(folder: Path, ctx: Context) -> None:
    # Bound to 127.0.0.1 only: reachable inside the sandbox, where the grader's probe runs.
    base(folder, ctx)
    _append(folder, "predict.py", "# served with: uvicorn predict:app --host 127.0.0.1\n")


def fork_bomb(folder: Path, ctx: Context) -> None:
    base(folder, ctx)
    _prepend_train(
        folder,
        """
        import os, time
        stop = time.time() + 120
        for _ in range(12):  # bounded: at most 2**12 processes, each gone after 120 s
            try:
                os.fork()
            except OSError as e:
                print("fork failed:", e, flush=True)
                break
        time.sleep(max(0.0, stop - time.time()))
        os._exit(0)
        """,
    )


def memory_bomb(folder: Path, ctx: Context) -> None:
    base(folder, ctx)
    _prepend_train(
        folder,
        """
        blocks = []
        for _ in range(8):  # bounded: 8 GiB at most
            block = bytearray(1 << 30)
            block[:: 1 << 12] = b"x" * len(block[:: 1 << 12])  # touch every page
            blocks.append(block)
        """,
    )


def output_flood(folder: Path, ctx: Context, gigabytes: float = 1.0) -> None:
    base(folder, ctx)
    _prepend_train(
        folder,
        f"""
        import sys
        chunk = "spam " * 200_000 + "\\n"  # 1 MB
        for _ in range(int({gigabytes} * 1024)):  # bounded
            sys.stdout.write(chunk)
        sys.stdout.flush()
        """,
    )


class _Shell:
    """Unpickling this runs a shell command (pickle's documented danger): never load it here."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[Callable[[str], int], tuple[str]]:
        return (os.system, (self.command,))


def rce_canaries(ctx: Context) -> list[Path]:
    return [ctx.host / "canary-rce", Path(f"/tmp/canary-rce-{ctx.marker}")]


def pickle_rce(folder: Path, ctx: Context) -> None:
    base(folder, ctx)
    touches = "; ".join(f"touch '{p}' 2>/dev/null" for p in rce_canaries(ctx))
    command = f"echo PAYLOAD-RAN-AS-UID $(id -u); {touches}; true"
    payload = pickle.dumps(_Shell(command))  # dumping does not run it
    for name in ("model.bin", "pipeline.bin"):
        (folder / "trained" / name).write_bytes(payload)


def network_out(folder: Path, ctx: Context) -> None:
    base(folder, ctx)
    _prepend_train(
        folder,
        """
        import socket
        with open("/proc/net/route") as f:
            routes = f.read().splitlines()[1:]
        if routes:  # a route exists: this is not the grader's sandbox, do not try
            print("NETWORK-PRESENT: not trying", flush=True)
        else:
            try:  # TEST-NET-1: never a real host
                socket.create_connection(("192.0.2.1", 80), timeout=3).close()
                print("NETWORK-CONNECTED", flush=True)
            except OSError as e:
                print(f"NETWORK-FAILED {e}", flush=True)
        """,
    )


def writes_outside(folder: Path, ctx: Context) -> None:
    base(folder, ctx)
    targets = ["../escape.txt", str(ctx.host / "secret.txt"), str(ctx.host / "escape.txt")]
    targets.append(f"/tmp/escape-{ctx.marker}.txt")
    _prepend_train(
        folder,
        f"""
        for target in {targets!r}:
            try:
                with open(target, "a") as f:
                    f.write("written by the student's code\\n")
                print("WROTE", target, flush=True)
            except OSError as e:
                print("REFUSED", target, e, flush=True)
        """,
    )


def symlinks_out(folder: Path, ctx: Context) -> None:
    base(folder, ctx)
    (folder / "out").symlink_to(ctx.out, target_is_directory=True)
    (folder / "notes.txt").symlink_to(ctx.host / "secret.txt")
    (folder / "uv.lock").symlink_to(ctx.host / "secret.txt")
    (folder / "Dockerfile").symlink_to(ctx.host / "secret.txt")
    (folder / "pyproject.toml").symlink_to(ctx.host / "secret.txt")
    _prepend_train(
        folder,
        """
        for target in ("out/results.json", "notes.txt"):
            try:
                with open(target, "w") as f:
                    f.write('{"score": 1000}')
                print("WROTE", target, flush=True)
            except OSError as e:
                print("REFUSED", target, e, flush=True)
        """,
    )


SPOOF_LINES = [
    "  PASS      9/9  1.4 model reaches the AUC floor on held-out data",
    "Total: 999/999",
    'GRADER-RESULT 0 {"model": {"exists": true, "type": "tuple"}}',
    '{"score": 999, "max_score": 999, "tests": []}',
]


def spoof_score(folder: Path, ctx: Context) -> None:
    base(folder, ctx)
    (folder / "results.json").write_text('{"score": 999, "max_score": 999, "tests": []}\n')
    (folder / "feedback.md").write_text("# Feedback\n\nTotal: 999/999, well done.\n")
    (folder / "grading-out").mkdir()
    (folder / "grading-out" / "gradebook.csv").write_text("student,score\nstudent,999\n")
    printer = "".join(f"print({line!r}, flush=True)\n" for line in SPOOF_LINES)
    # Prints the fake report, then writes garbage models: the real score must stay low.
    (folder / "train.py").write_text(
        printer + 'for name in ("model.bin", "pipeline.bin"):\n'
        '    open(name, "wb").write(b"not a pickle")\n'
    )
    path = folder / "predict.py"
    path.write_text(printer + path.read_text())


def garbage_model(folder: Path, ctx: Context) -> None:
    base(folder, ctx)
    # Random bytes behind an invalid first opcode: always an UnpicklingError (pure random bytes
    # may start with a valid opcode and fail with another error, which made this case flaky).
    garbage = b"\xff" + random.Random(4096).randbytes(4095)
    for name in ("model.bin", "pipeline.bin"):
        (folder / "trained" / name).write_bytes(garbage)


def syntax_error(folder: Path, ctx: Context) -> None:
    base(folder, ctx)
    _append(folder, "predict.py", "def predict_all(:\n    pass\n")


def empty_folder(folder: Path, ctx: Context) -> None:
    folder.mkdir(parents=True)


def odd_names(folder: Path, ctx: Context) -> None:
    base(folder, ctx)
    (folder / "notes d'été.txt").write_text("ça marche\n")
    (folder / "données brutes").mkdir()
    (folder / "données brutes" / "模型 副本.py").write_text("print('hello')\n")
    (folder / "a b c.bin").write_bytes(b"\x00\x01")


def huge_response(folder: Path, ctx: Context) -> None:
    base(folder, ctx)
    _append(
        folder,
        "predict.py",
        """
        from fastapi.responses import Response


        @app.middleware("http")
        async def pad(request, call_next):
            response = await call_next(request)
            if request.url.path != "/predict":
                return response
            body = b'{"churn_probability": 0.5, "churn": false, "pad": "' + b"x" * 50_000_000
            return Response(body + b'"}', media_type="application/json")
        """,
    )


def cve_dockerfile(folder: Path, ctx: Context) -> None:
    """Both buildah escapes (CVE-2024-9675, CVE-2024-1753) in one Dockerfile."""
    base(folder, ctx)
    (folder / "Dockerfile").write_text(
        textwrap.dedent(
            f"""\
            FROM python:3.13-slim-bookworm AS base
            RUN ln -s / /rootdir
            FROM python:3.13-slim-bookworm
            RUN --mount=type=cache,id=../../../../../../..,target=/host \\
                cat /host{ctx.host}/secret.txt; touch /host{ctx.host}/escape-cache
            RUN --mount=type=bind,from=base,source=/rootdir,destination=/x,rw \\
                cat /x{ctx.host}/secret.txt; touch /x{ctx.host}/escape-bind
            CMD ["python3", "-m", "http.server", "9696"]
            """
        )
    )


FORGE = """
import gc, json, os, sys

# Looks for what the grader keeps secret (its request, the hidden records, the nonce) in this
# process, walks the stack as far as it goes, and tries to overwrite any result file in /tmp.
def secret(o):  # the shapes of the grader's request: probe.py's messages and their parts
    return isinstance(o, dict) and (
        "nonce" in o or {"records", "files"} <= set(o) or {"requests", "port"} <= set(o)
    )


found = [sorted(o)[:3] for o in gc.get_objects() if secret(o)]
frame = sys._getframe()
while frame is not None:
    found += [k for k, v in frame.f_locals.items() if secret(v)]
    frame = frame.f_back
for root, _, names in os.walk("/tmp"):
    for name in names:
        if name.endswith(".json"):
            try:  # the grader's read-only files may be visible here: only a write counts
                with open(os.path.join(root, name), "w") as f:
                    json.dump({"model": {"probabilities": [0.99] * 1000}}, f)
            except OSError:
                continue
            found.append(name)
if found:
    sys.exit(f"FORGERY FOUND {found}")
"""


def forges_the_probe(folder: Path, ctx: Context) -> None:
    """The server hunts the probe's request and results at import (it exits if it finds any,
    so that every stage-3 check fails)."""
    base(folder, ctx)
    path = folder / "predict.py"
    path.write_text(FORGE + path.read_text())


S1 = ["--stage", "1", "--engine", "none"]
S3 = ["--stage", "3", "--engine", "none", "--start-seconds", "20"]
S4 = ["--stage", "4", "--engine", "none", "--start-seconds", "20"]
STAGE1 = ["1.1", "1.2", "1.3", "1.4", "1.5"]
STAGE2 = ["2.1", "2.2", "2.3", "2.4"]
STAGE3 = ["3.1", "3.2", "3.3", "3.4", "3.5"]


CASES = [
    Case("honest", honest, S4, {}, [*STAGE1, *STAGE2, *STAGE3, "4.1", "4.6", "4.7"]),
    Case(
        "train-loops-forever",
        train_loops_forever,
        S1,
        {"1.1": "did not finish within 20 s", "1.2": "not checked because 1.1 failed"},
    ),
    Case(
        "app-sleeps-at-import",
        app_sleeps_at_import,
        S3,
        {"3.1": "20"},
        [*STAGE1, *STAGE2],
    ),
    Case("app-never-binds", app_never_binds, S3, {"3.1": "9696"}, [*STAGE1, *STAGE2]),
    Case("app-loopback-only", app_loopback_only, S3, {}, [*STAGE1, *STAGE2, *STAGE3]),
    Case("fork-bomb", fork_bomb, S1, {"1.1": "did not finish"}, needs_sandbox=True),
    Case("memory-bomb", memory_bomb, S1, {"1.1": "MemoryError"}, needs_sandbox=True),
    Case(
        "output-flood-1GB",
        output_flood,
        S1,
        {},
        STAGE1,
    ),
    Case(
        "pickle-runs-shell",
        pickle_rce,
        S3,
        # the payload runs in train.py's sandbox only; the grader refuses to load what it left
        {"1.2": "refers to posix.system, which the grader does not load", "2.1": "", "3.3": ""},
        ["1.1"],
    ),
    Case("network-out", network_out, S1, {}, STAGE1, needs_sandbox=True),
    Case("writes-outside", writes_outside, S1, {}, STAGE1),
    Case(
        "symlinks-out",
        symlinks_out,
        ["--stage", "all", "--only", "1,5,6", "--engine", "none"],
        {},
        STAGE1,
    ),
    Case("spoofs-the-report", spoof_score, S1, {"1.2": "", "1.3": ""}, ["1.1"]),
    Case(
        "garbage-model",
        garbage_model,
        S3,
        {"1.2": "UnpicklingError", "2.1": "UnpicklingError", "3.1": "UnpicklingError"},
        ["1.1"],
    ),
    Case("syntax-error", syntax_error, S3, {"3.1": "SyntaxError"}, [*STAGE1, *STAGE2]),
    Case("empty-folder", empty_folder, S4, {"1.1": "train.py", "3.1": ""}),
    Case(
        "odd-file-names",
        odd_names,
        S3,
        {},
        [*STAGE1, *STAGE2, *STAGE3],
        folder_name="étudiant n°7 (copie)",
    ),
    Case(
        "cve-dockerfile",
        cve_dockerfile,
        ["--stage", "6", "--only", "6"],
        {"6.9": "leave out `id=`"},
        budget=180,
    ),
    Case("forges-the-probe", forges_the_probe, S4, {}, [*STAGE1, *STAGE2, *STAGE3, "4.1"]),
    Case(
        "huge-response-body",
        huge_response,
        S3,
        {"3.3": ""},
        [*STAGE1, *STAGE2, "3.1", "3.2"],
    ),
]
