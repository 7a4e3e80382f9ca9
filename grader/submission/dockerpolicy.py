"""What the grader builds of a student's Dockerfile: the build policy and the dependency steps.

Both read the Dockerfile through the strict reader (`grader.submission.dockerfile.parse`): what the
reader is not sure the engines read the same way is refused first, with its line. The policy then
refuses what the course does not teach and what reaches outside the build; the dependency steps are
what builds of different submissions may share.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from grader.submission.dockerfile import Dockerfile, Instruction, lines, parse, placed

# -- the policy: what the course teaches, and nothing that reaches outside the build context --
MOUNT_KEYS = {
    "cache": {"type", "target", "dst", "destination", "sharing", "readonly", "ro", "rw", "mode",
              "uid", "gid"},
    "bind": {"type", "target", "dst", "destination", "source", "src", "readonly", "ro"},
    "tmpfs": {"type", "target", "dst", "destination", "size"},
}  # fmt: skip
# A source ADD fetches instead of reading the folder: a URL, a git remote.
REMOTE = re.compile(r"[a-z][a-z0-9+.-]*://|git@|github\.com/", re.I)


def _mount_options(spec: str) -> tuple[dict[str, str], list[str]]:
    """A `--mount` value's options (keys in lower case, as BuildKit reads them), and the keys
    given more than once (engines differ on which one counts)."""
    options: dict[str, str] = {}
    twice: list[str] = []
    for part in spec.split(","):
        key, _, value = part.partition("=")
        key = key.strip().lower()
        if key in options:
            twice.append(key)
        options[key] = value.strip()
    return options, twice


def _mount_problem(spec: str) -> str | None:
    options, twice = _mount_options(spec)
    if twice:
        return f"`--mount={spec}` gives {', '.join(sorted(set(twice)))} twice: give each once"
    kind = options.get("type", "bind")
    allowed = MOUNT_KEYS.get(kind)
    if allowed is None:
        return (
            f"`--mount=type={kind}` is not used in this course: install from uv.lock with a "
            "cache mount and bind mounts of uv.lock and pyproject.toml, as uv's Docker guide shows"
        )
    extra = sorted(set(options) - allowed)
    if extra:
        hint = {
            "id": "leave out `id=`: one cache per target is all uv needs",
            "from": "bind files of your folder, not of another stage or image (no `from=`)",
            "rw": "leave out `rw`: a bind mount stays read-only",
            "readwrite": "leave out `readwrite`: a bind mount stays read-only",
        }
        named = [hint.get(k, f"leave out `{k}=`") for k in extra]
        return f"`--mount={spec}` uses {', '.join(extra)}: " + "; ".join(named)
    for key in ("ro", "readonly"):
        if options.get(key, "true").lower() not in ("", "true"):
            return (
                f"`--mount={spec}`: leave out `{key}={options[key]}` (engines read it differently)"
            )
    source = options.get("source", options.get("src", ""))
    if source:
        parts = source.replace("\\", "/").split("/")
        if source.startswith("/") or ".." in parts or "$" in source:
            return (
                f"`--mount={spec}`: the source must be a file of your folder, named relative to "
                f"it (e.g. `source=uv.lock`), not `{source}`"
            )
    return None


def _problems(ins: Instruction) -> list[str]:
    options = [o for o in ins.options()[0] if placed(o)]  # the others: the reader's problems
    problems = []
    if ins.keyword == "RUN":
        for option in options:
            name, _, value = option.partition("=")
            if name == "--mount":
                problem = _mount_problem(value)
                if problem:
                    problems.append(problem)
            elif name in ("--network", "--security"):
                problems.append(f"`RUN {option}` is not used in this course: remove it")
    elif ins.keyword == "ADD":
        if any(REMOTE.match(w) or ":" in w for w in ins.words()[:-1]):
            problems.append(
                "`ADD <URL>` downloads outside the build's control: commit the file and "
                "COPY it, or download it in a RUN step"
            )
        if any(o.startswith(("--checksum", "--keep-git-dir")) for o in options):
            problems.append("ADD's --checksum/--keep-git-dir are not used in this course")
    return [f"line {ins.line}: {p}" if ins.line else p for p in problems]


def policy_problems(df: Dockerfile) -> list[str]:
    """What the grader will not build, each with what to change (empty: fine).

    First what the strict reader is not sure of (`Dockerfile.problems`). Then: mounts other
    than cache/bind/tmpfs, cache ids and sources, bind mounts `from=` another stage or image,
    writable or with a source outside the folder, `ADD` of URLs, and RUN's
    `--network`/`--security` options. These are not taught in the course, and they are how
    a Dockerfile reaches outside its build (CVE-2024-9675, CVE-2024-1753, CVE-2024-11218)."""
    problems = list(df.problems)
    for ins in df.instructions:
        problems += _problems(ins)
    return problems


def external_images(df: Dockerfile) -> list[str]:
    """Images the build reads: FROM images and `COPY --from=<image>`, not stage names."""
    stages: set[str] = set()
    images: list[str] = []
    for ins in df.instructions:
        options, rest = ins.options()
        if ins.keyword == "FROM":
            words = rest.split()
            if words and words[0].lower() not in stages and words[0] != "scratch":
                images.append(words[0])
            if len(words) >= 3 and words[1].lower() == "as":
                stages.add(words[2].lower())
        elif ins.keyword == "COPY":
            for option in options:
                if option.startswith("--from="):
                    name = option.split("=", 1)[1]
                    if name.lower() not in stages and not name.isdigit():
                        images.append(name)
    return list(dict.fromkeys(images))


# -- the dependency steps: what builds of different submissions may share --------------------
PROJECT_FILES = frozenset({"pyproject.toml", "uv.lock", ".python-version"})
# Instructions that read nothing of the build context.
NO_CONTEXT = frozenset(
    {"ARG", "ENV", "WORKDIR", "LABEL", "USER", "EXPOSE", "SHELL", "CMD", "ENTRYPOINT",
     "STOPSIGNAL", "HEALTHCHECK", "VOLUME", "MAINTAINER"}
)  # fmt: skip


@dataclass(frozen=True)
class DependencySteps:
    """The first steps of a Dockerfile, up to the RUN that installs from uv.lock."""

    text: str  # the Dockerfile's first lines, as the engines read them, up to that RUN
    files: tuple[str, ...]  # the files of the folder these steps read (project files only)


def _project_file(source: str) -> str | None:
    name = source.strip().removeprefix("./")
    return name if name in PROJECT_FILES else None


def _run_reads(options: list[str]) -> set[str] | None:
    """The project files a RUN step mounts; None if it reads anything else of the folder."""
    read: set[str] = set()
    for option in options:
        name, _, value = option.partition("=")
        if name != "--mount":
            return None
        spec, _ = _mount_options(value)
        kind = spec.get("type", "bind")
        if kind in ("cache", "tmpfs") and "id" not in spec and "from" not in spec:
            continue
        source = _project_file(spec.get("source", spec.get("src", "")))
        if kind != "bind" or "from" in spec or source is None:
            return None
        read.add(source)
    return read


def _copy_reads(ins: Instruction) -> set[str] | None:
    """The project files a COPY step copies; None if it copies anything else of the folder."""
    options, _ = ins.options()
    external = False
    for option in options:
        name, _, value = option.partition("=")
        if name == "--from":
            external = bool(value) and not value.isdigit()  # an image, not an earlier stage
        elif name not in ("--chown", "--chmod", "--link"):
            return None
    if external:
        return set()  # files of an image (uv's, in the course), none of the folder
    sources = [_project_file(w) for w in ins.words()[:-1]]
    if not sources or None in sources:
        return None
    return {s for s in sources if s is not None}


def dependency_steps(text: str) -> DependencySteps | None:
    """The steps a build may share with other submissions' builds, or None.

    These are the Dockerfile's first instructions, in its first stage, up to the last RUN after
    which uv.lock has been read, when nothing before it reads a file of the folder other than
    pyproject.toml, uv.lock and .python-version (copied, or bind-mounted by name) - the
    course's `uv sync --locked` layer. Their result depends on their text and those files
    only, so a build of the same text with byte-identical files may reuse it. None whenever
    the policy refuses anything in the file: a store is never keyed on text the strict reader
    did not read as the engines do."""
    df = parse(text)
    if policy_problems(df):
        return None
    read: set[str] = set()
    last: Instruction | None = None
    stages = 0
    for ins in df.instructions:
        if ins.keyword == "FROM":
            stages += 1
            if stages > 1:
                break
            continue
        if ins.keyword in NO_CONTEXT:
            continue
        found = (
            _run_reads(ins.options()[0])
            if ins.keyword == "RUN"
            else _copy_reads(ins)
            if ins.keyword == "COPY"
            else None
        )
        if found is None:
            break
        read |= found
        if ins.keyword == "RUN" and "uv.lock" in read:
            last = ins
    if last is None:
        return None
    return DependencySteps("\n".join(lines(text)[: last.end]) + "\n", tuple(sorted(read)))
