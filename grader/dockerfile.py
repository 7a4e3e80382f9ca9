"""A small Dockerfile reader for the static checks: instructions, stages, ports, users."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case: FROM, RUN, COPY, ...
    args: str  # the rest of the (joined) line
    end: int = 0  # the number of the file's lines up to and including this instruction

    def words(self) -> list[str]:
        """Arguments as a list: JSON (exec) form if it parses, else split on white space."""
        text = self.args.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
                if isinstance(value, list):
                    return [str(v) for v in value]
            except ValueError:
                pass
        return text.split()


@dataclass(frozen=True)
class Dockerfile:
    instructions: list[Instruction]

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def last(self, keyword: str) -> Instruction | None:
        found = self.all(keyword)
        return found[-1] if found else None

    def final_stage(self) -> list[Instruction]:
        """Instructions of the last stage (after the last FROM)."""
        start = max((n for n, i in enumerate(self.instructions) if i.keyword == "FROM"), default=0)
        return self.instructions[start:]

    def base_images(self) -> list[str]:
        images = []
        for i in self.all("FROM"):
            words = [w for w in i.words() if not w.startswith("--")]
            if words:
                images.append(words[0])
        return images

    def command(self) -> list[str]:
        """The final stage's ENTRYPOINT + CMD words."""
        words: list[str] = []
        for keyword in ("ENTRYPOINT", "CMD"):
            found = [i for i in self.final_stage() if i.keyword == keyword]
            if found:
                words += found[-1].words()
        return words

    def exposed_ports(self) -> list[int]:
        ports = []
        for i in self.all("EXPOSE"):
            for word in i.words():
                match = re.fullmatch(r"(\d+)(/tcp)?", word)
                if match:
                    ports.append(int(match.group(1)))
        return ports

    def served_port(self) -> int | None:
        """The port the command listens on (`--port N`, `--bind host:N`, `-b host:N`)."""
        words = self.command()
        for n, word in enumerate(words):
            if word.startswith("--port="):
                return _int(word.split("=", 1)[1])
            if word == "--port" and n + 1 < len(words):
                return _int(words[n + 1])
            if word in ("--bind", "-b") and n + 1 < len(words) and ":" in words[n + 1]:
                return _int(words[n + 1].rsplit(":", 1)[1])
        ports = self.exposed_ports()
        return ports[0] if ports else None

    def host(self) -> str | None:
        """The address the command binds (`--host H`, `--bind H:port`), if it names one."""
        words = self.command()
        for n, word in enumerate(words):
            if word.startswith("--host="):
                return word.split("=", 1)[1]
            if word in ("--host", "--bind", "-b") and n + 1 < len(words):
                return words[n + 1].rsplit(":", 1)[0] if ":" in words[n + 1] else words[n + 1]
        return None

    def user(self) -> str | None:
        """The final stage's last USER, if any."""
        found = [i for i in self.final_stage() if i.keyword == "USER"]
        return found[-1].args.strip() if found else None

    def text(self, keyword: str) -> str:
        return "\n".join(i.args for i in self.all(keyword))


def _int(text: str) -> int | None:
    return int(text) if text.isdigit() else None


def parse(text: str) -> Dockerfile:
    """Instructions with continuation lines joined and comments dropped (heredocs not handled).

    Linear in the size of the file: no regular expression runs over a whole instruction."""
    instructions: list[Instruction] = []
    current: list[str] = []
    number = 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if current and line.startswith("#"):
            continue
        if line.endswith("\\"):
            current.append(line[:-1])
            continue
        current.append(line)
        _add(instructions, " ".join(current), number)
        current = []
    if current:
        _add(instructions, " ".join(current), number)
    return Dockerfile(instructions)


def _add(instructions: list[Instruction], text: str, end: int) -> None:
    keyword, _, args = text.strip().partition(" ")
    if keyword:
        instructions.append(Instruction(keyword.upper(), args.strip(), end))


# Linear-time matching for the static checks: a version not preceded by a digit or a dot (no
# backtracking through long runs of digits), searched only after the first installer word.
VERSION = re.compile(r"(?<![\d.])\d+\.\d+\.\d+")
INSTALLERS = ("pip install", "uv-installer", "astral.sh/uv/")


def after(line: str, words: tuple[str, ...]) -> str:
    """The rest of `line` after the first of `words` in it ("" if none is)."""
    found = [i + len(w) for w in words if (i := line.find(w)) >= 0]
    return line[min(found) :] if found else ""


# -- the policy: what the course teaches, and nothing that reaches outside the build context --
MOUNT_KEYS = {
    "cache": {"type", "target", "dst", "destination", "sharing", "readonly", "ro", "rw", "mode",
              "uid", "gid"},
    "bind": {"type", "target", "dst", "destination", "source", "src", "readonly", "ro", "rw"},
    "tmpfs": {"type", "target", "dst", "destination", "size"},
}  # fmt: skip
URL_PREFIXES = ("http://", "https://", "ftp://", "git@", "git://", "ssh://")


def flags(args: str) -> tuple[list[str], str]:
    """The leading `--flag[=value]` words of an instruction, and the rest."""
    found: list[str] = []
    rest = args.lstrip()
    while rest.startswith("--"):
        word, _, rest = rest.partition(" ")
        found.append(word)
        rest = rest.lstrip()
    return found, rest


def _mount_problem(spec: str) -> str | None:
    options: dict[str, str] = {}
    for part in spec.split(","):
        key, _, value = part.partition("=")
        options[key.strip().lower()] = value.strip()
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
        }
        named = [hint.get(k, f"leave out `{k}=`") for k in extra]
        return f"`--mount={spec}` uses {', '.join(extra)}: " + "; ".join(named)
    source = options.get("source", options.get("src", ""))
    if source:
        parts = source.replace("\\", "/").split("/")
        if source.startswith("/") or ".." in parts or "$" in source:
            return (
                f"`--mount={spec}`: the source must be a file of your folder, named relative to "
                f"it (e.g. `source=uv.lock`), not `{source}`"
            )
    return None


def policy_problems(df: Dockerfile) -> list[str]:
    """What the grader will not build, each with what to change (empty: fine).

    Refused: mounts other than cache/bind/tmpfs, cache ids and sources, bind mounts `from=`
    another stage or image or with a source outside the folder, `ADD` of URLs, and RUN's
    `--network`/`--security` options. These are not taught in the course, and they are how
    a Dockerfile reaches outside its build (CVE-2024-9675, CVE-2024-1753)."""
    problems = []
    for ins in df.instructions:
        options, rest = flags(ins.args)
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
            words = rest.split()
            if any(w.lower().startswith(URL_PREFIXES) for w in words[:-1]):
                problems.append(
                    "`ADD <URL>` downloads outside the build's control: commit the file and "
                    "COPY it, or download it in a RUN step"
                )
            if any(o.startswith(("--checksum", "--keep-git-dir")) for o in options):
                problems.append("ADD's --checksum/--keep-git-dir are not used in this course")
    return problems


def external_images(df: Dockerfile) -> list[str]:
    """Images the build reads: FROM images and `COPY --from=<image>`, not stage names."""
    stages: set[str] = set()
    images: list[str] = []
    for ins in df.instructions:
        options, rest = flags(ins.args)
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
DIRECTIVE = re.compile(r"#\s*(syntax|escape|check)\s*=", re.I)


@dataclass(frozen=True)
class DependencySteps:
    """The first steps of a Dockerfile, up to the RUN that installs from uv.lock."""

    text: str  # the Dockerfile's first lines, exactly as written, up to that RUN
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
        spec = dict(part.partition("=")[::2] for part in value.split(","))
        kind = spec.get("type", "bind")
        if kind in ("cache", "tmpfs") and "id" not in spec and "from" not in spec:
            continue
        source = _project_file(spec.get("source", spec.get("src", "")))
        if kind != "bind" or "from" in spec or source is None:
            return None
        read.add(source)
    return read


def _copy_reads(options: list[str], rest: str) -> set[str] | None:
    """The project files a COPY step copies; None if it copies anything else of the folder."""
    external = False
    for option in options:
        name, _, value = option.partition("=")
        if name == "--from":
            external = bool(value) and not value.isdigit()  # an image, not an earlier stage
        elif name not in ("--chown", "--chmod", "--link"):
            return None
    words = Instruction("COPY", rest).words()
    if external:
        return set()  # files of an image (uv's, in the course), none of the folder
    sources = [_project_file(w) for w in words[:-1]]
    if not sources or None in sources:
        return None
    return {s for s in sources if s is not None}


def dependency_steps(text: str) -> DependencySteps | None:
    """The steps a build may share with other submissions' builds, or None.

    These are the Dockerfile's first instructions, in its first stage, up to the last RUN after
    which uv.lock has been read, when nothing before it reads a file of the folder other than
    pyproject.toml, uv.lock and .python-version (copied, or bind-mounted by name) - the
    course's `uv sync --locked` layer. Their result depends on their text and those files
    only, so a build of the same text with byte-identical files may reuse it."""
    lines = text.splitlines()
    if lines and DIRECTIVE.match(lines[0].strip()):
        return None  # parser directives change how the file reads
    read: set[str] = set()
    last: Instruction | None = None
    stages = 0
    for ins in parse(text).instructions:
        options, rest = flags(ins.args)
        if "<<" in ins.args:
            break  # a heredoc: not read here
        if ins.keyword == "FROM":
            stages += 1
            if stages > 1:
                break
            continue
        if ins.keyword in NO_CONTEXT:
            continue
        found = (
            _run_reads(options)
            if ins.keyword == "RUN"
            else _copy_reads(options, rest)
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
    return DependencySteps("\n".join(lines[: last.end]) + "\n", tuple(sorted(read)))
