"""Course scale: a synthetic cohort of student repositories, graded from the submissions form.

Run:  uv run python bench/cohort_scale.py [--students 50] [--engine none|podman|docker]
                                          [--only 1,2,3] [--shards 4] [--out DIR]

Builds at least `--students` Git repositories served by a local `git http-backend` (plain http
on 127.0.0.1: the run sets the grader's test-only loopback switch, and its report says so):
the homework's reference solution (solutions/) in many variants (each with its own comment, some
with a later commit after the deadline that must not be graded), one repository per kind of
mistake of tests/grader/fixtures (the fairness cohort; variants that need a pre-trained model
are left out), the starter code, two endless train.py, a missing and an empty repository.
Then measures: each clone alone (sequential), `grade batch --repos … --jobs 2` (wall time, each
student's grading time by kind), the same cohort in `--shards` shards run one after the other
(each shard's time: on a CI matrix they run at once) merged with `--merge`, and whether the
merged gradebook equals the single run's. Needs $CREDIT_DATA (default ../shared/data/…).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from bench.harness import ROOT

FIXTURES = ROOT / "tests" / "grader" / "fixtures"
DEADLINE = datetime(2027, 1, 15, 23, 59, 59, tzinfo=UTC)
GIT_ENV = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "LC_ALL": "C",
    "HOME": "/nonexistent",
    "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
    "GIT_AUTHOR_NAME": "s",
    "GIT_AUTHOR_EMAIL": "s@example.org",
    "GIT_COMMITTER_NAME": "s",
    "GIT_COMMITTER_EMAIL": "s@example.org",
}
IGNORE = shutil.ignore_patterns("*.bin", ".venv", "__pycache__", ".server.log")


def git(cwd: Path, *args: str, when: datetime | None = None) -> None:
    env = dict(GIT_ENV)
    if when is not None:
        env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = when.isoformat()
    subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True)


class Backend(BaseHTTPRequestHandler):
    """`git http-backend` as CGI behind a threaded HTTP server (requests are small: no chunks)."""

    root = Path()

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.serve()

    def do_POST(self) -> None:
        self.serve()

    def serve(self) -> None:
        path, _, query = self.path.partition("?")
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        env = dict(
            GIT_ENV,
            GIT_PROJECT_ROOT=str(self.root),
            GIT_HTTP_EXPORT_ALL="1",
            REQUEST_METHOD=self.command,
            PATH_INFO=path,
            QUERY_STRING=query,
            CONTENT_TYPE=self.headers.get("Content-Type", ""),
            CONTENT_LENGTH=str(len(body)),
            GIT_PROTOCOL=self.headers.get("Git-Protocol", ""),
            HTTP_CONTENT_ENCODING=self.headers.get("Content-Encoding", ""),
        )
        out = subprocess.run(
            ["git", "http-backend"], input=body, env=env, capture_output=True
        ).stdout
        head, _, payload = out.partition(b"\r\n\r\n")
        status, headers = 200, []
        for line in head.decode(errors="replace").split("\r\n"):
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.split()[0])
            elif name:
                headers.append((name, value.strip()))
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def variant_files(name: str, dest: Path) -> Path:
    """solutions/ with the fixture `name` laid over it (tests/grader_variants.py's rules)."""
    info = tomllib.loads((FIXTURES / name / "variant.toml").read_text())
    shutil.copytree(ROOT / str(info.get("base", "solutions")), dest, ignore=IGNORE)
    for path in (FIXTURES / name).iterdir():
        if path.name != "variant.toml":
            shutil.copy2(path, dest / path.name)
    for gone in info.get("delete", []):
        (dest / gone).unlink()
    return dest


def cohort(students: int) -> list[tuple[str, str, Path | None, bool]]:
    """(student, kind, files or None (missing, empty), a commit after the deadline)."""
    work = Path(tempfile.mkdtemp(prefix="cohort-src-"))
    kinds: list[tuple[str, str, Path | None, bool]] = []
    mistakes = [
        p.name
        for p in sorted(FIXTURES.iterdir())
        if (p / "variant.toml").is_file()
        # not those built by running code or by changing files of the base: variant_files lays
        # whole files only
        and not tomllib.loads((p / "variant.toml").read_text()).keys()
        & {"pretrain", "prepend", "append", "prepare"}
        and p.name != "reference"
    ]
    for name in mistakes[: max(1, students // 3)]:  # all 16 kinds from 48 students on
        kinds.append((f"m-{name}", "mistake", variant_files(name, work / name), False))
    for i in range(2 if students >= 10 else 0):
        endless = shutil.copytree(ROOT / "solutions", work / f"endless-{i}", ignore=IGNORE)
        (endless / "train.py").write_text("while True:\n    pass\n")
        kinds.append((f"x-endless-{i}", "endless", endless, False))
    kinds.append(
        (
            "s-starter",
            "starter",
            shutil.copytree(ROOT / "homework", work / "starter", ignore=IGNORE),
            False,
        )
    )
    kinds += [("z-missing", "missing", None, False), ("z-empty", "empty", None, False)]
    n = 0
    while len(kinds) < students + 2:  # + missing and empty, which are not graded
        n += 1
        folder = shutil.copytree(ROOT / "solutions", work / f"correct-{n}", ignore=IGNORE)
        train = folder / "train.py"
        train.write_text(train.read_text() + f"\n# student {n}: my own run of the homework\n")
        kinds.append((f"c-{n:02d}", "correct", folder, n % 3 == 0))
    return kinds


def serve_cohort(kinds: list[tuple[str, str, Path | None, bool]], root: Path) -> str:
    """Bare repositories under root, served on a free port; returns the base URL."""
    before, after = DEADLINE - timedelta(days=1), DEADLINE + timedelta(days=20)
    for student, kind, files, later in kinds:
        if kind == "missing":
            continue
        bare = root / f"{student}.git"
        git(root, "init", "--quiet", "--bare", "-b", "main", str(bare))
        git(bare, "config", "uploadpack.allowFilter", "true")
        if files is None:
            continue
        tree = Path(tempfile.mkdtemp(prefix="tree-"))
        shutil.copytree(files, tree, dirs_exist_ok=True)
        git(tree, "init", "--quiet", "-b", "main")
        git(tree, "add", "-A")
        git(tree, "commit", "--quiet", "-m", "homework", when=before)
        if later:
            (tree / "train.py").write_text("raise SystemExit('rewritten after the deadline')\n")
            git(tree, "commit", "--quiet", "-am", "after the deadline", when=after)
        git(tree, "push", "--quiet", str(bare), "HEAD:main")
        shutil.rmtree(tree)
    handler = type("Handler", (Backend,), {"root": root})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{httpd.server_address[1]}"


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    start = time.monotonic()
    proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    if proc.returncode not in (0, 1):
        sys.exit(f"{' '.join(cmd[:6])}… failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return time.monotonic() - start, proc


def clone_times(kinds: list[tuple[str, str, Path | None, bool]], url: str) -> list[float]:
    from grader.batch.course.repos import fetch

    scratch, times = Path(tempfile.mkdtemp(prefix="clones-")), []
    for student, kind, _, _ in kinds:
        start = time.monotonic()
        fetch(f"{url}/{student}.git", "", "", DEADLINE, scratch / student, allow_loopback=True)
        if kind not in ("missing", "empty"):
            times.append(time.monotonic() - start)
    shutil.rmtree(scratch)
    return times


def per_kind(out: Path, kinds: list[tuple[str, str, Path | None, bool]]) -> dict[str, list[float]]:
    seconds: dict[str, list[float]] = {}
    for student, kind, _, _ in kinds:
        path = out / "students" / student / "report.json"
        if path.is_file():
            seconds.setdefault(kind, []).append(json.loads(path.read_text())["seconds"])
    return seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--students", type=int, default=50)
    p.add_argument("--engine", default="none")
    p.add_argument("--only", help="grade only these stages (default: all)")
    p.add_argument("--shards", type=int, default=4)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--out", type=Path, default=Path(tempfile.mkdtemp(prefix="cohort-scale-")))
    args = p.parse_args()
    data = Path(
        os.environ.get("CREDIT_DATA") or ROOT.parent / "shared/data/AER_credit_card_data.csv"
    )
    if not data.is_file():
        sys.exit(f"credit CSV not found at {data}: set CREDIT_DATA to it")
    os.environ["GRADER_TEST_ONLY_ALLOW_LOOPBACK"] = "1"  # the repositories are on 127.0.0.1
    env = {**os.environ, "CREDIT_DATA": str(data), "GRADER_AUDIT_KEY": "bench-" + "k" * 40}
    kinds = cohort(args.students)
    (args.out / "served").mkdir(parents=True)
    url = serve_cohort(kinds, args.out / "served")
    form = args.out / "form.csv"
    form.write_text("student,repository\n" + "".join(f"{s},{url}/{s}.git\n" for s, *_ in kinds))
    clones = clone_times(kinds, url)
    base = [
        sys.executable,
        "-m",
        "grader.cli",
        "batch",
        "--repos",
        str(form),
        "--deadline",
        DEADLINE.isoformat(),
        "--spec",
        "credit",
        "--engine",
        args.engine,
        "--jobs",
        str(args.jobs),
        "--seed",
        "20270115",
    ] + (["--only", args.only] if args.only else [])
    total, _ = timed([*base, "--out", str(args.out / "full")], env)
    shard_times = []
    for i in range(1, args.shards + 1):
        seconds, _ = timed(
            [*base, "--shard", f"{i}/{args.shards}", "--out", str(args.out / f"shard-{i}")], env
        )
        shard_times.append(seconds)
    merge_s, _ = timed(
        [
            sys.executable,
            "-m",
            "grader.cli",
            "batch",
            "--merge",
            *(str(args.out / f"shard-{i}") for i in range(1, args.shards + 1)),
            "--out",
            str(args.out / "merged"),
        ],
        env,
    )
    same = (args.out / "full/gradebook.csv").read_bytes() == (
        args.out / "merged/gradebook.csv"
    ).read_bytes()
    graded = [k for k in kinds if k[1] not in ("missing", "empty")]
    result = {
        "repositories": len(kinds),
        "graded": len(graded),
        "engine": args.engine,
        "stages": args.only or "all",
        "jobs": args.jobs,
        "clone_seconds": {
            "median": round(statistics.median(clones), 2),
            "max": round(max(clones), 2),
        },
        "grading_seconds": {
            k: {"n": len(v), "median": round(statistics.median(v), 1), "max": round(max(v), 1)}
            for k, v in per_kind(args.out / "full", kinds).items()
        },
        "total_seconds": round(total, 1),
        "shard_seconds": [round(s, 1) for s in shard_times],
        "merge_seconds": round(merge_s, 1),
        "identical_gradebooks": same,
        "extrapolated_300": {
            "one_machine_minutes": round(total * 300 / len(graded) / 60, 1),
            f"{args.shards}_shards_minutes": round(max(shard_times) * 300 / len(graded) / 60, 1),
        },
        "out": str(args.out),
    }
    (args.out / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
