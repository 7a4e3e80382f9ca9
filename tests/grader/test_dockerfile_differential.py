"""The strict Dockerfile reader against the engines' own parsers (a differential test).

A corpus of tricky but harmless Dockerfiles goes through the grader's reading (the bounded
file reader, `dockerfile.parse`, `dockerpolicy.policy_problems`) and through real builds:
rootless podman as the build user, as the grader builds, and `docker build` (BuildKit) when a
Docker daemon answers. Every RUN of the corpus runs `/p.sh LABEL`, which prints its label and
the mount points it sees that the stage's first RUN did not: the mounts the engine applied,
observed from inside the build. Every file is either refused by the grader, or read by it as
the engine read it: the same instructions (podman's STEP lines; BuildKit's build steps), and
for each RUN the same label and the same mounts. The mounts are harmless (cache, tmpfs, bind
mounts of the context); what each refused file did in the engine is printed.
"""

from __future__ import annotations

import contextlib
import functools
import os
import posixpath
import re
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from grader import containers
from grader.containers.engine import ensure_images
from grader.submission import dockerfile, dockerpolicy, files

BASE = "python:3.13-slim-bookworm"
PROBE = """#!/bin/sh
echo "CORPUS-RUN $1"
cut -d' ' -f5 /proc/self/mountinfo | sort > /tmp/corpus-now
if [ "$1" = base ]; then cp /tmp/corpus-now /corpus-base; exit 0; fi
comm -13 /corpus-base /tmp/corpus-now | sed "s|^|CORPUS-MOUNT $1 |"
"""
HEAD = f"FROM {BASE}\nCOPY p.sh /p.sh\nRUN sh /p.sh base\n"
CACHE = "--mount=type=cache,target=/probe/cache"
BIND = "--mount=type=bind,source=f.txt,target=/probe/bind"
BUILD_STEPS = {"FROM", "RUN", "COPY", "ADD", "WORKDIR"}  # the instructions BuildKit shows
OUTSIDE = "/var/tmp/corpus-outside-0000"  # a harmless folder builds must not reach (made unique)


@dataclass(frozen=True)
class Case:
    text: str | bytes
    may_fail: frozenset[str] = frozenset()  # engines that may refuse it (why: in `note`)
    note: str = ""


# Read by the grader as the engines read them: accepted.
ACCEPTED: dict[str, Case] = {
    "course": Case(
        HEAD + f"RUN {CACHE} \\\n    {BIND} \\\n    sh /p.sh course\nCOPY f.txt /f.txt\n"
        "WORKDIR /app\nENV A=1 B=$PATH\nUSER nobody\nEXPOSE 9696\n"
        'CMD ["python", "-c", "print(1)"]\n'
    ),
    "tmpfs": Case(HEAD + "RUN --mount=type=tmpfs,target=/probe/tmp sh /p.sh tmpfs\n"),
    "word-split": Case(
        HEAD + "RUN --mo\\\nunt=type=cache,tar\\\nget=/probe/split sh /p.sh split\n"
    ),
    "spaces-after-backslash": Case(HEAD + f"RUN {CACHE} \\   \t\n  sh /p.sh trailing\n"),
    "crlf": Case((HEAD + f"RUN {CACHE} \\\n  {BIND} \\\n sh /p.sh crlf\n").replace("\n", "\r\n")),
    "bom": Case("\ufeff" + HEAD + f"RUN {CACHE} sh /p.sh bom\n"),
    "tabs": Case(HEAD + f"RUN\t{CACHE}\t{BIND}\tsh /p.sh tabs\n\tRUN sh /p.sh indented\n"),
    "lower-case": Case(HEAD + f"run {CACHE} sh /p.sh lower\nworkdir /x\n"),
    "exec-form": Case(HEAD + f'RUN {CACHE} ["sh", "/p.sh", "json"]\n'),
    "hash-in-command": Case(HEAD + "RUN sh /p.sh hash # not a comment\n# a comment\n"),
    "note-comment": Case(HEAD + "# note=not a directive here\nRUN sh /p.sh note\n"),
    "continued-body": Case(HEAD + "RUN sh /p.sh \\\n    body \\\n    && echo done\n"),
    "metadata": Case(
        HEAD + 'LABEL a=b\nARG X=1\nSTOPSIGNAL SIGTERM\nSHELL ["/bin/sh", "-c"]\n'
        "HEALTHCHECK --interval=30s --timeout=3s CMD true\nENTRYPOINT []\n"
        "RUN --mount=type=bind,target=/probe/ctx sh /p.sh context\n"
        "VOLUME /data\n"  # after the RUN: buildah mounts volumes in later RUNs
    ),
    "two-stages": Case(
        HEAD.replace(f"FROM {BASE}", f"FROM {BASE} AS builder")
        + f"RUN {CACHE} sh /p.sh builder && echo built > /built\n"
        + HEAD
        + "COPY --from=builder /built /built\nRUN sh /p.sh final\n"
    ),
    "long-line": Case(HEAD + "RUN sh /p.sh long " + "x " * 28_000 + "\nRUN sh /p.sh after\n"),
    "syntax-directive": Case(
        "# syntax=docker/dockerfile:1\n" + HEAD + f"RUN {CACHE} sh /p.sh syntax\n",
        frozenset({"docker"}),
        "BuildKit pulls the docker/dockerfile frontend: no registry here",
    ),
    "relative-target": Case(
        HEAD + "WORKDIR /probe\nRUN --mount=type=bind,source=f.txt,target=rel sh /p.sh rel\n",
        frozenset({"podman"}),
        "podman 4.3 wants absolute bind targets (uv's guide uses relative ones)",
    ),
}
# Refused by the grader: each hides or changes a mount in some engine, or the engines differ.
REFUSED: dict[str, Case] = {
    "empty-line-in-continuation": Case(HEAD + f"RUN \\\n\n{CACHE} sh /p.sh hidden\n"),
    "comment-in-continuation": Case(HEAD + f"RUN \\\n# a comment\n{CACHE} sh /p.sh hidden\n"),
    "escape-directive": Case(f"# escape=`\n{HEAD}RUN `\n{CACHE} sh /p.sh hidden\n"),
    "directive-after-syntax": Case(
        f"# syntax=docker/dockerfile:1\n# escape=`\n{HEAD}RUN `\n{CACHE} sh /p.sh hidden\n"
    ),
    "other-frontend": Case(f"# syntax=example.invalid/frontend\n{HEAD}RUN sh /p.sh frontend\n"),
    "quoted-option": Case(HEAD + 'RUN --mount="type=cache,target=/probe/q" sh /p.sh quoted\n'),
    "variable-option": Case(HEAD + "ARG M=type=cache,target=/probe/v\nRUN --mount=$M sh /p.sh v\n"),
    "escaped-option": Case(HEAD + "RUN --mo\\unt=type=cache,target=/probe/e sh /p.sh escaped\n"),
    "eof-continuation": Case(HEAD + f"RUN {CACHE} sh /p.sh eof \\"),
    "double-cr": Case(HEAD + f"RUN sh /p.sh cr \\\r\r\nRUN {CACHE} sh /p.sh hidden\n"),
    "vertical-tab": Case(HEAD + f"RUN\x0b{CACHE} sh /p.sh vtab\n"),
    "no-break-space": Case(HEAD + f"RUN\u00a0{CACHE} sh /p.sh nbsp\n"),
    "look-alike": Case(HEAD + "RUN --mоunt=type=cache,target=/probe/l sh /p.sh lookalike\n"),
    "nul-byte": Case(HEAD + "RUN sh /p.sh nul\x00\n"),
    "onbuild": Case(HEAD + f"ONBUILD RUN {CACHE} sh /p.sh onbuild\nRUN sh /p.sh plain\n"),
    "heredoc": Case(HEAD + f"RUN <<EOF\nRUN {CACHE} sh /p.sh heredoc\nEOF\n"),
    "double-dash": Case(HEAD + f"RUN -- {CACHE} sh /p.sh dashes\n"),
    "mount-in-exec-form": Case(HEAD + f'RUN ["{CACHE}", "sh", "/p.sh", "exec"]\n'),
    "type-twice": Case(
        HEAD + "RUN --mount=type=cache,type=bind,source=f.txt,target=/probe/t sh /p.sh twice\n"
    ),
    "writable-bind": Case(
        HEAD + "RUN --mount=type=bind,target=/probe/ctx,rw "
        "sh -c 'sh /p.sh rw; echo x > /probe/ctx/written-by-build'\n"
    ),
    "writable-bind-and-a-link": Case(
        HEAD + "RUN --mount=type=bind,target=/probe/ctx,rw "
        f"sh -c 'sh /p.sh rw-link; ln -s {OUTSIDE} /probe/ctx/link'\n"
        "RUN --mount=type=bind,source=link,target=/probe/link "
        "sh -c 'sh /p.sh through-link; cat /probe/link/marker'\n"
    ),
    "over-the-cap": Case(HEAD + "RUN sh /p.sh long " + "x " * 36_000 + "\nRUN sh /p.sh after\n"),
}
CORPUS = {**ACCEPTED, **REFUSED}


@dataclass
class Reading:
    """What a reader (the grader's, or an engine's) made of a file."""

    refused: list[str] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)  # instruction keywords, in order
    runs: dict[str, list[str]] = field(default_factory=dict)  # RUN label: mount points
    # the build steps (FROM, RUN, COPY, ADD, WORKDIR) of each stage, by BuildKit's stage names;
    # BuildKit shows a step once when stages share it, as (stage, k, of n, keyword)
    stages: dict[str, list[str]] = field(default_factory=dict)
    shown: list[tuple[str, int, int, str]] = field(default_factory=list)
    returncode: int = 0
    log: str = ""


def grader_reading(context: Path) -> Reading:
    """The grader's reading: bounded file reader, strict reader, policy."""
    try:
        text = files.read_text(context / "Dockerfile", root=context)
    except files.FileProblem as e:
        return Reading(refused=[str(e)])
    df = dockerfile.parse(text)
    reading = Reading(refused=dockerpolicy.policy_problems(df))
    froms = df.all("FROM")  # BuildKit names the stages of a multi-stage build
    for ins in df.instructions:
        reading.steps.append(ins.keyword)
        if ins.keyword == "FROM":
            words = ins.words()
            named = len(words) == 3 and words[1].upper() == "AS"
            stage = words[2] if named and len(froms) > 1 else f"stage-{len(reading.stages)}"
            reading.stages[stage] = []
        if ins.keyword in BUILD_STEPS and reading.stages:
            reading.stages[stage].append(ins.keyword)
        if ins.keyword == "RUN":
            options, rest = ins.options()
            label = re.search(r"/p\.sh[\",\s]*([\w-]+)", rest)
            mounts = []
            for option in options:
                spec = dict(
                    p.partition("=")[::2] for p in option.removeprefix("--mount=").split(",")
                )
                target = spec.get("target") or spec.get("dst") or spec.get("destination") or ""
                if not target.startswith("/"):
                    target = "/probe/" + target  # relative: under the WORKDIR of the corpus
                mounts.append(posixpath.normpath(target))
            reading.runs[label.group(1) if label else rest] = sorted(mounts)
    return reading


def _observed(log: str) -> dict[str, list[str]]:
    runs: dict[str, list[str]] = {}
    for line in log.splitlines():
        if found := re.search(r"CORPUS-RUN (\S+)", line):
            runs.setdefault(found.group(1), [])
        elif found := re.search(r"CORPUS-MOUNT (\S+) (\S+)", line):
            runs.setdefault(found.group(1), []).append(found.group(2))
    return {label: sorted(mounts) for label, mounts in runs.items()}


def podman_reading(engine: containers.Engine, folder: Path) -> Reading:
    """A rootless podman build as the grader's build user, in a storage of its own."""
    storage = ["--root", str(folder / "s"), "--runroot", str(folder / "r"),
               "--storage-driver", engine.driver,
               "--storage-opt", f"{engine.driver}.imagestore={engine.store}"]  # fmt: skip
    argv = [engine.path, *storage, "build", "--no-cache", "--layers=false", "--network=none",
            "-t", f"localhost/corpus-{uuid.uuid4().hex}", str(folder / "ctx")]  # fmt: skip
    env, run = engine.env(folder), engine.wrap
    done = subprocess.run(run(argv), env=env, cwd="/", capture_output=True, text=True,
                          timeout=600, check=False)  # fmt: skip
    subprocess.run(run([engine.path, *storage, "system", "reset", "--force"]), env=env, cwd="/",
                   capture_output=True, timeout=300, check=False)  # fmt: skip
    log = done.stdout + done.stderr
    steps = [m.group(1).upper() for m in re.finditer(r"STEP \d+/\d+: (\S+)", log)]
    return Reading(steps=steps, runs=_observed(log), returncode=done.returncode, log=log)


def docker_reading(docker: str, folder: Path) -> Reading:
    """`docker build` with BuildKit: its build steps (FROM, RUN, COPY, ADD, WORKDIR)."""
    tag = f"corpus-{uuid.uuid4().hex}"
    done = subprocess.run(
        [docker, "build", "--no-cache", "--progress=plain", "-t", tag, str(folder / "ctx")],
        env={**os.environ, "DOCKER_BUILDKIT": "1"}, capture_output=True, text=True,
        timeout=600, check=False,
    )  # fmt: skip
    subprocess.run([docker, "rmi", "-f", tag], capture_output=True, timeout=120, check=False)
    log = done.stdout + done.stderr
    shown = re.findall(r"^#\d+ \[(?:([\w.-]+) )?\s*(\d+)/(\d+)\] (\w+)", log, re.M)
    steps = sorted({(st or "stage-0", int(k), int(n), kind.upper()) for st, k, n, kind in shown})
    return Reading(runs=_observed(log), shown=steps, returncode=done.returncode, log=log)


def _context(name: str, case: Case, owner: int | None, outside: Path) -> Path:
    folder = Path(tempfile.mkdtemp(prefix=f"corpus-{name[:20]}-", dir="/var/tmp"))
    context = folder / "ctx"
    context.mkdir()
    text = case.text if isinstance(case.text, bytes) else case.text.encode()
    text = text.replace(OUTSIDE.encode(), str(outside).encode())
    (context / "Dockerfile").write_bytes(text)
    (context / "p.sh").write_text(PROBE)
    (context / "f.txt").write_text("a file of the folder\n")
    (folder / "xdg").mkdir()
    if owner is not None:
        for path in [folder, *folder.rglob("*")]:
            os.lchown(path, owner, owner)
    return folder


def _engines(container_engine: str) -> tuple[dict[str, Callable[[Path], Reading]], int | None]:
    """The engine of this run of the test (how to build with it), and the podman build user's
    uid (the corpus folders are given to it)."""
    found: dict[str, Callable[[Path], Reading]] = {}
    podman, _ = containers.detect("podman")
    if podman is not None:
        ensure_images(podman, [BASE])
        found["podman"] = functools.partial(podman_reading, podman)
    docker = shutil.which("docker", path="/usr/local/sbin:/usr/local/bin:/usr/bin:/bin")
    if docker and subprocess.run([docker, "info"], capture_output=True).returncode == 0:
        found["docker"] = functools.partial(docker_reading, docker)
    assert container_engine in found, f"{container_engine} prepared, but not usable here"
    return {container_engine: found[container_engine]}, podman.uid if podman else None


def _compare(case: Case, engine: str, mine: Reading, theirs: Reading) -> str:
    """'' if the engine read the file as the grader did (or may refuse it), else why not."""
    if theirs.returncode != 0:
        if engine in case.may_fail:
            return ""
        return f"{engine} failed to build it:\n{theirs.log[-3000:]}"
    if engine == "podman" and theirs.steps != mine.steps:
        return f"instructions: grader {mine.steps}, podman {theirs.steps}"
    if engine == "docker":
        one = next(iter(mine.stages)) if len(mine.stages) == 1 else None  # its name: any
        seen = {one or stage: n for stage, _, n, _ in theirs.shown}
        kinds = {(one or stage, k): kind for stage, k, _, kind in theirs.shown}
        mine_kinds = {
            (st, k): kind for st, ks in mine.stages.items() for k, kind in enumerate(ks, 1)
        }
        if seen != {st: len(ks) for st, ks in mine.stages.items()} or any(
            mine_kinds.get(key) != kind for key, kind in kinds.items()
        ):
            return f"build steps: grader {mine.stages}, BuildKit {theirs.shown}"
    if theirs.runs != mine.runs:
        return f"RUN steps and mounts: grader {mine.runs}, {engine} {theirs.runs}"
    return ""


@pytest.mark.slow
@pytest.mark.container
def test_every_file_is_refused_or_read_as_the_engines_read_it(container_engine: str) -> None:
    engines, owner = _engines(container_engine)
    outside = Path(tempfile.mkdtemp(prefix="corpus-outside-", dir="/var/tmp"))
    outside.chmod(0o755)
    (outside / "marker").write_text("OUTSIDE-THE-CONTEXT\n")
    folders: dict[tuple[str, str], Path] = {}
    try:
        for name, engine in ((n, e) for n in CORPUS for e in engines):
            folders[name, engine] = _context(name, CORPUS[name], owner, outside)
        mine = {name: grader_reading(folders[name, next(iter(engines))] / "ctx") for name in CORPUS}
        # one build at a time per engine (BuildKit shows a step shared by concurrent builds
        # under one of their names), the engines side by side
        with contextlib.ExitStack() as pools:
            pool = {e: pools.enter_context(ThreadPoolExecutor(max_workers=1)) for e in engines}
            jobs = {key: pool[key[1]].submit(engines[key[1]], f) for key, f in folders.items()}
            readings = {key: job.result() for key, job in jobs.items()}
        wrote = {key: (f / "ctx" / "written-by-build").exists() for key, f in folders.items()}
    finally:
        for folder in [*folders.values(), outside]:
            shutil.rmtree(folder, ignore_errors=True)
    differences = []
    print()
    for (name, engine), theirs in sorted(readings.items()):
        case = CORPUS[name]
        if mine[name].refused:
            ran = ", ".join(f"{k} {v}" for k, v in theirs.runs.items() if k != "base") or "none"
            extra = "; wrote into the context" if wrote[name, engine] else ""
            extra += "; read outside the context" if "OUTSIDE-THE" in theirs.log else ""
            print(f"{name:27} {engine:6} refused ({mine[name].refused[0][:50]}...); the engine: "
                  f"exit {theirs.returncode}, ran {ran}{extra}")  # fmt: skip
            continue
        problem = _compare(case, engine, mine[name], theirs)
        why = f" ({case.note})" if case.note and theirs.returncode else ""
        print(f"{name:27} {engine:6} accepted; {problem or 'read alike'}{why}")
        if problem:
            differences.append(f"{name} ({engine}): {problem}")
    accepted = {n for n in CORPUS if not mine[n].refused}
    print(f"{len(accepted)} accepted and read alike, {len(CORPUS) - len(accepted)} refused; "
          f"engines: {', '.join(engines)}")  # fmt: skip
    assert not differences, "\n".join(differences)
    assert accepted == set(ACCEPTED), accepted ^ set(ACCEPTED)
