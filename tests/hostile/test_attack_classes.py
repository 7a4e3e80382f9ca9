"""The grader's defences, one attack class at a time (docs/reliability.md, "Attack classes").

Each test plays the attack against the part of the grader that defends it: the Dockerfile
policy and the container runs (classes 1, 5-9), the probe protocol (2), the sandbox's view of
the host (3, 10) and the bounded readers (11). Whole-submission cases of the same attacks are
in tests/hostile/corpus.py (graded by the real CLI in tests/hostile/test_hostile.py).
"""

from __future__ import annotations

import http.server
import json
import os
import pwd
import resource
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from grader import containers, environment
from grader.containers import engine as engines
from grader.containers import run as container_run
from grader.containers import store
from grader.grading import probe as grader_probe
from grader.probes import http_probe
from grader.sandbox import Sandbox, bwrap, bwrap_available
from grader.submission import dockerfile, dockerpolicy, files, picklescan

SANDBOXED = bwrap_available() is not None
BASE = "python:3.13-slim-bookworm"
CVE_9675 = f"""FROM {BASE}
RUN --mount=type=cache,id=../../../../../../../../..,target=/host ls /host
"""
CVE_1753 = f"""FROM {BASE} AS base
RUN ln -s / /rootdir
FROM {BASE}
RUN --mount=type=bind,from=base,source=/rootdir,destination=/exploit,rw ls /exploit
"""


# -- class 1: the engine CVEs are not reachable ---------------------------------------------
def test_cve_dockerfiles_are_refused_with_what_to_change() -> None:
    for text, word in ((CVE_9675, "id"), (CVE_1753, "from=")):
        problems = dockerpolicy.policy_problems(dockerfile.parse(text))
        assert problems and word in problems[0], problems
    url = dockerfile.parse(f"FROM {BASE}\nADD http://127.0.0.1:8000/seed /seed\n")
    assert "COPY" in dockerpolicy.policy_problems(url)[0]
    outside = dockerfile.parse(f"FROM {BASE}\nRUN --mount=source=../x,target=/x ls\n")
    assert "relative" in dockerpolicy.policy_problems(outside)[0]
    course = Path(__file__).parents[2] / "solutions" / "Dockerfile"
    assert dockerpolicy.policy_problems(dockerfile.parse(course.read_text())) == []


def test_old_engines_are_named_with_their_cves() -> None:
    warning = " ".join(engines._warnings("podman", "4.3.1"))
    assert "CVE-2024-1753" in warning and "CVE-2024-9675" in warning
    assert "CVE-2024-1753" not in " ".join(engines._warnings("podman", "5.0.1"))
    assert engines._warnings("podman", "5.4.2") == ()
    assert engines._warnings("docker", "24.0.7")


# -- the container runs ----------------------------------------------------------------------
def _grader_engine(name: str) -> containers.Engine:
    found, why = containers.detect(name)
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(f"no engine for the grader: {why}")
        pytest.skip(f"no engine for the grader: {why}")
    if found.name == "podman" and os.geteuid() == 0:
        assert found.user is not None
    return found


@pytest.fixture(scope="module")
def engine(podman_engine: str) -> containers.Engine:
    """podman as the grader uses it: rootless as the build user, a storage per run, the
    shared dependency store (what these attack classes are about)."""
    return _grader_engine(podman_engine)


@pytest.fixture(scope="module")
def each_engine(container_engine: str) -> containers.Engine:
    """podman, then Docker: what both must hold."""
    return _grader_engine(container_engine)


def _context(tmp_path: Path, dockerfile_text: str, **files_: str) -> Path:
    folder = tmp_path / f"ctx-{uuid.uuid4().hex[:6]}"
    folder.mkdir()
    (folder / "Dockerfile").write_text(textwrap.dedent(dockerfile_text))
    (folder / "run.txt").write_text(folder.name)  # a new submission: no storage kept for it
    for name, text in files_.items():
        (folder / name).write_text(text)
    return folder


def _run(engine: containers.Engine, context: Path) -> containers.ContainerRun:
    df = dockerfile.parse((context / "Dockerfile").read_text())
    run = containers.ContainerRun(engine, uuid.uuid4().hex[:12], context, 9696,
                         images=dockerpolicy.external_images(df))  # fmt: skip
    run.start()
    return run


@pytest.mark.slow
@pytest.mark.container
def test_cache_id_escape_reads_nothing_of_the_graders(
    engine: containers.Engine, tmp_path: Path
) -> None:
    """Defence in depth for class 1: the escape the policy refuses, built anyway, as the build
    user (podman 4.3.1 is vulnerable): root-only files stay unreadable, nothing is written."""
    if engine.user is None:
        pytest.skip("the grader does not run as root here: no separate build user")
    marker = uuid.uuid4().hex
    secret_dir = Path("/root") / f".hostile-{marker}"
    secret_dir.mkdir(mode=0o700)
    (secret_dir / "seed").write_text(f"SEED-{marker}")
    text = f"""\
        FROM {BASE}
        RUN --mount=type=cache,id=../../../../../../../../../..,target=/host \\
            sh -c 'cat /host{secret_dir}/seed; cat /host/etc/shadow; \\
                   touch /host/root/escaped-{marker}; echo done'
        """
    run = _run(engine, _context(tmp_path, text))
    try:
        build = run.build_result(300)
    finally:
        run.close()
        leaked = Path(f"/root/escaped-{marker}").exists()
        Path(f"/root/escaped-{marker}").unlink(missing_ok=True)
        (secret_dir / "seed").unlink()
        secret_dir.rmdir()
    print(f"\ncache-id escape as {engine.user}: exit {build.returncode}")
    assert f"SEED-{marker}" not in build.log
    assert "root:" not in build.log  # /etc/shadow
    assert not leaked


# -- classes 5 and 6: nothing shared between students' builds -------------------------------
SHARING = f"""\
    FROM {BASE}
    RUN --mount=type=cache,target=/cache \\
        sh -c 'echo "cache held: $(cat /cache/poison 2>/dev/null)"; cp /etc/hostname /cache/x; \\
               echo $(date +%s%N) > /cache/poison'
    RUN --mount=type=bind,source=lock.txt,target=/lock.txt cp /lock.txt /installed.txt
    CMD ["sh", "-c", "echo installed: $(cat /installed.txt); sleep 30"]
    """


@pytest.mark.slow
@pytest.mark.container
def test_students_share_no_cache_mount_and_no_layer(
    engine: containers.Engine, tmp_path: Path
) -> None:
    logs = []
    for student in ("alice", "bob"):
        context = _context(tmp_path, SHARING, **{"lock.txt": f"{student}-lock"})
        run = _run(engine, context)
        try:
            build = run.build_result(300)
            assert build.returncode == 0, build.log[-3000:]
            deadline = time.monotonic() + 60
            while "installed:" not in run.server_log() and time.monotonic() < deadline:
                time.sleep(0.2)
            logs.append((build.log, run.server_log()))
        finally:
            run.close()
    (_, alice), (bob_build, bob) = logs
    assert "installed: alice-lock" in alice
    assert "installed: bob-lock" in bob, bob  # not alice's layer (class 6)
    held = [line for line in bob_build.splitlines() if line.startswith("cache held:")]
    assert held == ["cache held: "], held  # alice's cache is not bob's (class 5)


# -- the one thing builds share: dependency steps of identical inputs ------------------------
DEPENDENCIES = f"""\
    FROM {BASE}
    WORKDIR /app
    RUN --mount=type=bind,source=uv.lock,target=/app/uv.lock \\
        sh -c 'cp uv.lock /deps.txt; echo "deps built: $(cat uv.lock)"'
    COPY app.txt /app.txt
    CMD ["sh", "-c", "echo deps: $(cat /deps.txt) app: $(cat /app.txt); sleep 30"]
    """


def test_dependency_steps_are_the_lock_install_and_nothing_after() -> None:
    """What may be shared: the first steps up to the RUN that reads uv.lock, when they read
    nothing else of the folder; a step reading anything else ends them."""
    steps = dockerpolicy.dependency_steps(textwrap.dedent(DEPENDENCIES))
    assert steps is not None and steps.files == ("uv.lock",)
    assert steps.text.rstrip().endswith('echo "deps built: $(cat uv.lock)"\'')
    assert "COPY app.txt" not in steps.text
    course = (Path(__file__).parents[2] / "solutions" / "Dockerfile").read_text()
    steps = dockerpolicy.dependency_steps(course)
    assert steps is not None and steps.files == ("pyproject.toml", "uv.lock")
    assert steps.text.rstrip().endswith("uv sync --locked --no-install-project --no-dev")
    copied = f"FROM {BASE}\nCOPY pyproject.toml uv.lock ./\nRUN uv sync --locked\nCOPY . .\n"
    steps = dockerpolicy.dependency_steps(copied)
    assert steps is not None and steps.files == ("pyproject.toml", "uv.lock")
    assert "COPY . ." not in steps.text
    for text in (
        f"FROM {BASE}\nCOPY . .\nRUN uv sync --locked\n",  # the whole folder first
        f"FROM {BASE}\nRUN --mount=type=bind,target=/src uv sync --locked\n",  # no source
        f"FROM {BASE}\nCOPY uv.lock app.py ./\nRUN uv sync --locked\n",  # app.py too
        f"FROM {BASE}\nRUN --mount=type=cache,target=/c echo no lock read\n",  # no uv.lock
        f"FROM {BASE}\nADD uv.lock .\nRUN uv sync --locked\n",  # ADD: not shared
        f"# escape=`\nFROM {BASE}\nCOPY uv.lock .\nRUN uv sync --locked\n",  # a directive
        f"FROM {BASE}\nCOPY uv.lock .\nRUN <<EOF\nuv sync --locked\nEOF\n",  # a heredoc
        f"FROM {BASE} AS a\nRUN echo\nFROM {BASE}\nCOPY uv.lock .\nRUN uv sync --locked\n",
    ):
        assert dockerpolicy.dependency_steps(text) is None, text


def _served(run: containers.ContainerRun, word: str) -> str:
    deadline = time.monotonic() + 60
    while word not in run.server_log() and time.monotonic() < deadline:
        time.sleep(0.2)
    return run.server_log()


@pytest.mark.slow
@pytest.mark.container
def test_only_identical_dependency_steps_share_their_layer(
    engine: containers.Engine, tmp_path: Path
) -> None:
    """Alice's dependency steps are built once into their store; Bob (same Dockerfile, same
    uv.lock bytes, his own app) reuses them and serves his own app; Carol (another uv.lock)
    and Dave (no uv.lock) share nothing (class 6: results come from each student's files)."""
    if engine.name != "podman":
        pytest.skip("the dependency store is podman's")
    lock = f"lock-{uuid.uuid4().hex[:8]}"  # unique: no store of an earlier run matches
    students = {
        "alice": (DEPENDENCIES, {"uv.lock": lock, "app.txt": "alice-app"}),
        "bob": (DEPENDENCIES, {"uv.lock": lock, "app.txt": "bob-app"}),
        "carol": (DEPENDENCIES, {"uv.lock": lock + "-carol", "app.txt": "carol-app"}),
        "dave": (DEPENDENCIES, {"app.txt": "dave-app"}),
    }
    seen = {}
    for student, (text, given) in students.items():
        run = _run(engine, _context(tmp_path, text, **given))
        try:
            build = run.build_result(300)
            served = _served(run, "app:") if build.returncode == 0 else ""
            seen[student] = (build, served)
        finally:
            run.close()
    alice, bob, carol, dave = (seen[s] for s in students)
    assert alice[0].returncode == 0 and f"deps built: {lock}" in alice[0].log, alice[0].log
    assert f"deps: {lock} app: alice-app" in alice[1]
    assert bob[0].returncode == 0, bob[0].log[-3000:]
    assert f"deps built: {lock}" not in bob[0].log and "Using cache" in bob[0].log, bob[0].log
    assert f"deps: {lock} app: bob-app" in bob[1]  # his app on the shared layer
    assert f"deps built: {lock}-carol" in carol[0].log  # her own lock, built for her
    assert f"deps: {lock}-carol app: carol-app" in carol[1]
    assert "Using cache" not in dave[0].log, dave[0].log[-2000:]  # no uv.lock: nothing shared
    assert lock not in dave[1]


@pytest.mark.slow
@pytest.mark.container
def test_a_filled_store_is_the_graders_and_read_only_to_every_build(
    engine: containers.Engine, tmp_path: Path
) -> None:
    """Once filled, a dependency store's folder is the grader's (not the build user's), and a
    run that reads it sees it, and the base images, through a read-only bind: whatever escapes
    a build (as the build user) cannot rewrite the layers later students reuse."""
    if engine.user is None:
        pytest.skip("needs the grader as root: a build user of its own")
    lock = f"lock-{uuid.uuid4().hex[:8]}"
    first = _run(engine, _context(tmp_path, DEPENDENCIES, **{"uv.lock": lock, "app.txt": "a"}))
    try:
        assert first.build_result(300).returncode == 0
        assert first.deps is not None
        store_path = first.deps
    finally:
        first.close()
    info = store_path.stat()
    assert info.st_uid == os.geteuid() and info.st_mode & 0o022 == 0, oct(info.st_mode)
    probe = f"touch {store_path}/storage/planted; echo rc=$?; "
    probe += f"touch {engine.store}/planted; echo rc=$?"
    env = engine.env(tmp_path)
    command = engine.wrap(["sh", "-c", probe], [store_path, Path(engine.store)])
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd="/", check=False)
    assert done.stdout.count("rc=1") == 2, done.stdout + done.stderr
    assert "Read-only file system" in done.stderr, done.stderr
    assert not (store_path / "storage" / "planted").exists()


@pytest.mark.slow
@pytest.mark.container
def test_what_training_changes_is_checked_again_before_the_build(
    engine: containers.Engine, tmp_path: Path
) -> None:
    """The dependency steps are keyed and built from the files read before training; what
    train.py then changes is checked again: a rewritten uv.lock builds without the store, a
    rewritten Dockerfile meets the policy again."""
    if engine.name != "podman":
        pytest.skip("the dependency store is podman's")
    lock = f"lock-{uuid.uuid4().hex[:8]}"
    first = _run(engine, _context(tmp_path, DEPENDENCIES, **{"uv.lock": lock, "app.txt": "a"}))
    try:
        assert first.build_result(300).returncode == 0
    finally:
        first.close()
    for change, name, text in (
        ("lock", "uv.lock", lock + "-rewritten"),
        ("dockerfile", "Dockerfile", textwrap.dedent(CVE_9675)),
    ):
        context = _context(tmp_path, DEPENDENCIES, **{"uv.lock": lock, "app.txt": change})
        df = dockerfile.parse((context / "Dockerfile").read_text())
        run = containers.ContainerRun(engine, uuid.uuid4().hex[:12], context, 9696,
                             images=dockerpolicy.external_images(df))  # fmt: skip
        try:
            run.begin()  # before training: the store of the submitted files is found
            assert run.deps is not None
            (context / name).write_text(text)  # what train.py did
            run.start()
            build = run.build_result(300)
            served = _served(run, "app:") if build.returncode == 0 else ""
        finally:
            run.close()
        if change == "lock":
            assert build.returncode == 0 and "Using cache" not in build.log, build.log[-2000:]
            assert f"deps: {lock}-rewritten app: lock" in served
        else:
            assert build.returncode == 1 and "does not build" in build.log, build.log[-2000:]
            assert "id=" in build.log and "STEP" not in build.log


# -- class 7: nothing outlives the grader ---------------------------------------------------
KILLED = """
import sys, time
from pathlib import Path
from grader import containers
from grader.submission import dockerfile, dockerpolicy
engine, _ = containers.detect(sys.argv[2])
ctx = Path(sys.argv[1])
df = dockerfile.parse((ctx / "Dockerfile").read_text())
images = dockerpolicy.external_images(df)
run = containers.ContainerRun(engine, sys.argv[3], ctx, 9696, images=images)
run.start()
print(run.folder, flush=True)
time.sleep(600)
"""


def _processes_of(user: str, needle: str) -> list[str]:
    uid = pwd.getpwnam(user).pw_uid if user else os.getuid()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.stat(f"/proc/{entry}").st_uid < uid:
                continue
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if needle in cmdline:
            found.append(f"{entry}: {cmdline[:120]}")
    return found


@pytest.mark.slow
@pytest.mark.container
def test_a_killed_grader_leaves_no_build_container_or_folder(
    each_engine: containers.Engine, tmp_path: Path
) -> None:
    if each_engine.name == "podman" and each_engine.user is None:
        pytest.skip("needs the pid namespace of a root grader")
    who = each_engine.user or ""  # docker: the daemon's processes, whoever runs them
    marker = uuid.uuid4().hex[:12]
    context = _context(tmp_path, f"FROM {BASE}\nRUN sh -c 'sleep 6000; echo {marker}'\n")
    needle = f"echo {marker}"
    root = Path(__file__).parents[2]
    command = [sys.executable, "-c", KILLED, str(context), each_engine.name, marker]
    grader = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=root)
    assert grader.stdout is not None
    folder = Path(grader.stdout.readline().strip())
    deadline = time.monotonic() + 120
    while not _processes_of(who, needle) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _processes_of(who, needle), "the endless RUN never started"
    grader.send_signal(signal.SIGKILL)  # as `grade batch --timeout` does
    grader.wait()
    deadline = time.monotonic() + 20
    while (left := _processes_of(who, needle)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not left, f"left behind: {left}"
    store.sweep()
    assert not folder.exists(), "the run's storage was not swept"
    if each_engine.name == "docker":
        labelled = subprocess.run(
            [each_engine.path, "ps", "-aq", "--filter", f"label=grader.run={marker}"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert labelled.stdout.strip() == "", "a container of the killed run is left"


# -- class 8: bounded logs and requests ------------------------------------------------------
@pytest.mark.slow
@pytest.mark.container
def test_a_log_flood_is_read_as_a_bounded_tail(
    each_engine: containers.Engine, tmp_path: Path
) -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    text = f"FROM {BASE}\nRUN head -c 300000000 /dev/zero | tr '\\\\0' x; echo; echo END\n"
    run = _run(each_engine, _context(tmp_path, text))
    try:
        build = run.build_result(300)
    finally:
        run.close()
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    print(f"\n300 MB build log: kept {len(build.log)} chars, grader grew {grown_mb:.0f} MB")
    # podman passes the whole log on (the grader keeps its tail); Docker's BuildKit clips a
    # step's output itself ("[output clipped, log limit …]") before the grader reads it
    end = "output clipped" if each_engine.name == "docker" else "END"
    assert build.returncode == 0 and end in build.log, build.log[-500:]
    assert len(build.log) <= container_run.LOG_KEPT
    assert grown_mb < 100


class _Drip(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "1000")
        self.end_headers()
        try:
            for _ in range(1000):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(1)
        except OSError:  # the client gave up: as it should
            pass

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def drip() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Drip)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.mark.slow
def test_a_one_byte_per_second_server_holds_the_grader_for_the_deadline_only(drip: str) -> None:
    started = time.monotonic()
    answer = http_probe.send(drip, {"id": "ping", "path": "/ping"}, timeout=3)
    assert "error" in answer and time.monotonic() - started < 5
    started = time.monotonic()
    reqs = [{"id": str(i), "path": "/ping"} for i in range(20)]
    answers = http_probe.run_requests(drip, reqs, total_seconds=6)
    seconds = time.monotonic() - started
    print(f"\n20 requests to a 1 byte/s server: {seconds:.1f} s (deadline 6 s)")
    assert seconds < 8 and all("error" in a for a in answers)


# -- class 9: the build is confined ----------------------------------------------------------
class _Host(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"HOST-LOOPBACK-REACHED")

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.slow
@pytest.mark.container
def test_builds_see_no_proxy_no_host_loopback_and_meet_a_memory_limit(
    engine: containers.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = uuid.uuid4().hex
    monkeypatch.setenv("HTTP_PROXY", f"http://grader:PROXY-{marker}@proxy.invalid:3128")
    monkeypatch.setenv("GRADER_TOKEN", f"TOKEN-{marker}")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Host)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    probe = (
        "import urllib.request\n"
        f"for host in ('127.0.0.1', '10.0.2.2', '10.0.2.3', '169.254.1.2'):\n"
        "    try:\n"
        f"        print(urllib.request.urlopen(f'http://{{host}}:{port}/', timeout=3).read())\n"
        "    except Exception as e:\n"
        "        print(host, type(e).__name__)\n"
    )
    (tmp_path / "probe").mkdir()
    context = _context(tmp_path, f"""\
        FROM {BASE}
        COPY probe.py /probe.py
        RUN env; python3 /probe.py
        RUN python3 -c "b = bytearray(6 * 1024**3); print('ALLOC' + 'ATED')" || echo LIMITED
        """, **{"probe.py": probe})  # fmt: skip
    run = _run(engine, context)
    try:
        build = run.build_result(300)
    finally:
        run.close()
        server.shutdown()
    assert build.returncode == 0, build.log[-3000:]
    for secret in (f"PROXY-{marker}", f"TOKEN-{marker}", "HOST-LOOPBACK-REACHED"):
        assert secret not in build.log, secret
    assert "\nLIMITED" in build.log and "\nALLOCATED" not in build.log


# -- classes 3 and 10: the sandbox shows only what a run needs -------------------------------
SNOOP = """
import os, sys
found = []
needle = "VIS" + "IBLE-"  # not in this file's own text
for top in sys.argv[1:]:
    for root, dirs, names in os.walk(top):
        for name in names:
            try:
                with open(os.path.join(root, name), errors="replace") as f:
                    if needle in f.read(10000):
                        found.append(os.path.join(root, name))
            except OSError:
                pass
print("FOUND", found)
print("ROOT", sorted(os.listdir("/")))
for size, where in ((600, "/tmp"), (300, "/dev/shm")):
    try:
        with open(f"{where}/fill", "wb") as f:
            for _ in range(size):
                f.write(b"x" * 2**20)
        print("FILLED", where)
    except OSError as e:
        print("CAPPED", where, e.errno)
"""


@pytest.mark.slow
@pytest.mark.skipif(not SANDBOXED, reason="needs bubblewrap")
def test_the_sandbox_shows_no_other_student_home_or_host_files(tmp_path: Path) -> None:
    marker = uuid.uuid4().hex
    other = Path("/var/tmp") / f"hostile-cohort-{marker}"  # world-readable, as cohorts are
    other.mkdir(mode=0o755)
    (other / "predict.py").write_text(f"VISIBLE-{marker} another student's work\n")
    (other / "predict.py").chmod(0o644)
    home = Path.home() / f".hostile-token-{marker}"
    home.write_text(f"VISIBLE-{marker} the instructor's token\n")
    submission = tmp_path / "student"
    submission.mkdir()
    (submission / "train.py").write_text(SNOOP)
    sandbox = Sandbox(submission)
    try:
        places = ["/var", "/home", str(Path.home()), str(Path(__file__).parents[2]), "/tmp",
                  "/work", "/srv", "/opt"]  # fmt: skip
        run = sandbox.run([sys.executable, "train.py", *places])
    finally:
        sandbox.close()
        home.unlink()
        (other / "predict.py").unlink()
        other.rmdir()
    print(f"\n{run.stdout.strip()}")
    assert "FOUND []" in run.stdout, run.stdout + run.stderr
    assert "'var'" not in run.stdout.split("ROOT", 1)[1].splitlines()[0]
    assert "CAPPED /tmp" in run.stdout and "CAPPED /dev/shm" in run.stdout
    args = (
        bwrap.arguments(sandbox.bwrap, sandbox.scratch, sandbox.visible, None)
        if sandbox.bwrap
        else []
    )
    sources = [args[i + 1] for i, a in enumerate(args) if a in ("--ro-bind", "--bind")]
    assert "/" not in sources and str(Path.home()) not in sources, sources


# -- class 2: the probes' results cannot be forged ------------------------------------------
LEAK_SERVER = """
import gc, os, re, sys
secret = re.compile("(RE" + "CORD|BA" + "D)-[0-9a-f]{32}")  # what later messages hold


def leaks(value, depth=0):
    if isinstance(value, (str, bytes, bytearray)):
        text = value if isinstance(value, str) else bytes(value).decode(errors="replace")
        return secret.search(text) is not None
    if depth < 3 and isinstance(value, dict):
        return any(leaks(k, depth + 1) or leaks(v, depth + 1) for k, v in value.items())
    if depth < 3 and isinstance(value, (list, tuple)):
        return any(leaks(v, depth + 1) for v in value)
    return False


found = [type(o).__name__ for o in gc.get_objects() if leaks(o)]
frame = sys._getframe()
while frame is not None:  # the stack walk of the original attack
    found += [f"frame {frame.f_code.co_name}" for v in frame.f_locals.values() if leaks(v)]
    frame = frame.f_back
# Result files the server could forge (writable), or files holding the secrets. The grader's
# own read-only installation may sit under /tmp on the host and so be visible: not a leak.
for root, _, names in os.walk("/tmp"):
    for path in (os.path.join(root, n) for n in names if n.endswith(".json")):
        try:
            with open(path, errors="replace") as f:
                readable_secret = secret.search(f.read(1_000_000)) is not None
        except OSError:
            readable_secret = False
        if readable_secret or os.access(path, os.W_OK):
            found.append(path)
print("LEAK", found, flush=True)
from fastapi import FastAPI
app = FastAPI()
@app.get("/ping")
def ping():
    return "pong"
"""


@pytest.mark.slow
@pytest.mark.skipif(not SANDBOXED, reason="needs bubblewrap")
def test_the_server_starts_before_the_probe_reads_anything_secret(tmp_path: Path) -> None:
    """probe.py forks the student's server before it reads the records, the HTTP requests
    and the nonce; the model child's answer comes on a pipe, not through a file."""
    submission = tmp_path / "student"
    submission.mkdir()
    (submission / "predict.py").write_text(LEAK_SERVER)
    sandbox = Sandbox(submission, [grader_probe.PROBES])
    nonce = uuid.uuid4().hex
    probe = grader_probe.PROBES / "probe.py"
    port = 9696
    argv = [sys.executable, "-m", "uvicorn", "predict:app", "--host", "127.0.0.1",
            "--port", str(port)]  # fmt: skip
    messages = [
        {"server": {"argv": argv}},
        {"model": {"records": [{"secret": f"RECORD-{nonce}"}], "files": {}}},
        {"nonce": nonce, "http": {"port": port, "start_seconds": 60, "requests": [
            {"id": "ping", "method": "GET", "path": "/ping"},
            {"id": "bad", "method": "POST", "path": "/ping", "body": {"x": f"BAD-{nonce}"}},
        ]}},
    ]  # fmt: skip
    stdin = "".join(f"{len(m.encode())}\n{m}" for m in map(json.dumps, messages))
    try:
        run = sandbox.start([sys.executable, "-I", str(probe)], stdin=True, result_fd=True)
        result = grader_probe.result(run.wait(stdin), nonce)
    finally:
        sandbox.close()
    assert result is not None, run.stderr
    http = result["http"]
    assert http["started"], http
    leak = [line for line in http["server_log"].splitlines() if line.startswith("LEAK")]
    assert leak == ["LEAK []"], http["server_log"]
    assert nonce not in http["server_log"]


# -- class 11: bounded, linear-time reading --------------------------------------------------
def test_submitted_files_are_read_within_caps_and_in_linear_time(tmp_path: Path) -> None:
    lock = tmp_path / "uv.lock"
    with lock.open("wb") as f:
        f.truncate(100 * 1024**2)
    started = time.monotonic()
    with pytest.raises(files.FileProblem, match=r"uv\.lock is 100\.0 MB"):
        files.read_toml(lock)
    (tmp_path / "fly.toml").write_text("a = " + "[" * 100_000 + "]" * 100_000)
    with pytest.raises(files.FileProblem, match="too deeply"):
        files.read_toml(tmp_path / "fly.toml", limit_bytes=1 << 20)
    (tmp_path / "deep.toml").write_text("a = " + "[" * 5_000 + "]" * 5_000)
    with pytest.raises(files.FileProblem, match="too deeply"):
        files.read_toml(tmp_path / "deep.toml")
    line = "RUN pip install " + "1" * 192_000 + " && uv sync " + "--x " * 10_000
    df = dockerfile.parse(f"FROM {BASE}\n{line}\n" * 4)
    runs = df.text("RUN").splitlines()
    assert not any(
        dockerfile.VERSION.search(dockerfile.after(r, dockerfile.INSTALLERS)) for r in runs
    )
    assert dockerpolicy.policy_problems(df) == []
    seconds = time.monotonic() - started
    print(f"\n100 MB uv.lock, 100k-deep TOML, 4 x 232 kB Dockerfile lines: {seconds:.2f} s")
    assert seconds < 5


def test_a_symlink_written_by_train_py_is_not_followed(tmp_path: Path) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    (scratch / "model.bin").symlink_to("/etc/shadow")
    with pytest.raises(files.FileProblem, match="outside your submission"):
        picklescan.sklearn_versions(scratch / "model.bin")
    with pytest.raises(files.FileProblem, match="outside your submission"):
        files.submitted(scratch, "model.bin")
    os.mkfifo(scratch / "uv.lock")
    with pytest.raises(files.FileProblem, match="not a regular file"):
        files.submitted(scratch, "uv.lock")


@pytest.mark.skipif(not SANDBOXED, reason="needs bubblewrap")
def test_uv_in_the_sandbox_finds_an_interpreter_without_home(tmp_path: Path) -> None:
    """uv installed with pip into a venv, or with uv's own Pythons under $HOME: the sandbox
    shows uv exactly the interpreter it needs (issue: "No interpreter found for Python 3.13")."""
    submission = tmp_path / "student"
    submission.mkdir()
    uv = environment.real_uv()
    if uv is None:
        pytest.skip("no uv")
    found = environment.uv_interpreter(uv, "3.13")
    assert found is not None
    python, installation = found
    sandbox = Sandbox(submission, [Path(uv), installation], uv)
    try:
        run = sandbox.run([uv, "python", "find", "--system"], env={"UV_PYTHON": python})
    finally:
        sandbox.close()
    assert run.ok, run.stdout + run.stderr
    assert str(Path.home()) not in [str(p) for p in sandbox.visible]
