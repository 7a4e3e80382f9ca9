"""The strict Dockerfile reader: instructions, stages, ports, users.

The static checks and the build policy (`grader.dockerpolicy`) read a student's Dockerfile with
this reader; the engine (buildah, BuildKit) reads the same bytes with its own parser. Where the
two readings differ, a step can hide from the policy: an empty line inside a continuation, or a
`# escape=` directive, each hid a `RUN --mount=type=cache,id=../..` that buildah 1.28 then ran.
So this reader reads lines exactly as the engines join them, and whatever it is not sure the
engines read the same way is a *problem* (`Dockerfile.problems`, each naming its line and what to
change): the policy then refuses the file and nothing is built. Refused:

- parser directives, except `# syntax=docker/dockerfile[:version]` as the first line;
- empty or comment lines inside a continued instruction, and a last line ending in `\\`;
- control characters (NUL, a lone carriage return...) anywhere; non-ASCII characters outside
  comment lines (look-alike letters and spaces); CRLF line ends and a leading BOM are read as the
  engines read them;
- unknown instructions and ONBUILD; heredocs (`<<`);
- `--options` the reader does not place itself (per instruction; their values without quotes,
  backslashes or `$` expansions), and `--mount`, `id=` or `from=` anywhere else in an
  instruction.

Linear in the size of the file. Lines have no length cap here: the grader reads at most 64 kB
of Dockerfile (`grader.submission.files`), under the 64 kB at which buildah silently stops
reading a file.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

INSTRUCTIONS = frozenset(
    {"FROM", "RUN", "CMD", "LABEL", "MAINTAINER", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT",
     "VOLUME", "USER", "WORKDIR", "ARG", "STOPSIGNAL", "HEALTHCHECK", "SHELL"}
)  # fmt: skip
# The --options each instruction may have (the policy refuses some of them with its reasons).
OPTIONS = {
    "FROM": {"platform"},
    "RUN": {"mount", "network", "security"},
    "COPY": {"from", "chown", "chmod", "link"},
    "ADD": {"chown", "chmod", "link", "checksum", "keep-git-dir"},
    "HEALTHCHECK": {"interval", "timeout", "start-period", "start-interval", "retries"},
}
OPTION = re.compile(r"--([a-z][a-z-]*)(?:=([A-Za-z0-9_./:@+-]*))?")
MOUNT = re.compile(r"--mount=[A-Za-z0-9_./:@+,=-]+")  # `=` and `,` in mount options only
UNPLACED = re.compile(r"--mount|(?<![a-z0-9_])(?:id|from)=", re.I)
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
ODD_IN_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]|\r(?!\n)")
NON_ASCII = re.compile(r"[^\x00-\x7f]")
DIRECTIVE = re.compile(r"#[ \t]*([A-Za-z][A-Za-z0-9]*)[ \t]*=")
KNOWN_DIRECTIVES = frozenset({"syntax", "escape", "check", "platform"})
SYNTAX = re.compile(
    r"#[ \t]*(?i:syntax)[ \t]*=[ \t]*(?:docker\.io/)?docker/dockerfile(?::\d+(?:\.\d+){0,2})?"
    r"(?:@sha256:[0-9a-f]{64})?[ \t]*"
)
SHOWN = 12  # problems listed (then how many more)
WORD_END = re.compile(r"[ \t]")
BLANKS = re.compile(r"[ \t]+")


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case: FROM, RUN, COPY, ...
    args: str  # the rest of the instruction, continuation lines joined as the engines join them
    end: int = 0  # the number of the file's lines up to and including this instruction
    line: int = 0  # the line it starts on

    def options(self) -> tuple[list[str], str]:
        """The leading `--name[=value]` words, and the rest."""
        return flags(self.args)

    def words(self) -> list[str]:
        """Arguments as a list: JSON (exec) form if it is a list of strings, else split on white
        space (as the engines decide between the two forms)."""
        text = self.options()[1].strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except ValueError:
                value = None
            if isinstance(value, list) and all(isinstance(v, str) for v in value):
                return value
        return text.split()


def flags(args: str) -> tuple[list[str], str]:
    """The leading `--flag[=value]` words of an instruction's arguments, and the rest: the
    words the engines take for options (separated by spaces or tabs; a bare `--` is kept as a
    word so that the reader can refuse it)."""
    found: list[str] = []
    n, size = 0, len(args)
    while True:
        while n < size and args[n] in " \t":
            n += 1
        if not args.startswith("--", n):
            return found, args[n:]
        end = WORD_END.search(args, n)
        stop = end.start() if end else size
        found.append(args[n:stop])
        n = stop


@dataclass(frozen=True)
class Dockerfile:
    instructions: list[Instruction]
    problems: tuple[str, ...] = field(default=())  # what the reader is not sure of

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


# Linear-time matching for the static checks: a version not preceded by a digit or a dot (no
# backtracking through long runs of digits), searched only after the first installer word.
VERSION = re.compile(r"(?<![\d.])\d+\.\d+\.\d+")
INSTALLERS = ("pip install", "uv-installer", "astral.sh/uv/")


def after(line: str, words: tuple[str, ...]) -> str:
    """The rest of `line` after the first of `words` in it ("" if none is)."""
    found = [i + len(w) for w in words if (i := line.find(w)) >= 0]
    return line[min(found) :] if found else ""


def lines(text: str) -> list[str]:
    """The file's lines as the engines split them: on `\\n` only, one `\\r` before it dropped
    (CRLF), a byte-order mark at the start dropped."""
    found = text.removeprefix("\ufeff").split("\n")
    return [line.removesuffix("\r") for line in found]


def _continued(line: str) -> bool:
    """Whether the line ends in the escape character, spaces and tabs after it allowed."""
    return line.rstrip(" \t").endswith("\\")


def _line_problems(number: int, line: str, comment: bool) -> list[str]:
    found = []
    control = CONTROL.search(line)
    if control:
        found.append(
            f"line {number} has the control character {control.group()!r}: remove it (the "
            "engines and the grader may read the line differently)"
        )
    other = None if comment else NON_ASCII.search(line)
    if other:
        found.append(
            f"line {number} has the non-ASCII character {other.group()!r} "
            f"(U+{ord(other.group()):04X}): write instructions in plain ASCII (comments may "
            "use any character)"
        )
    return found


def _comment_problem(number: int, line: str, before_instructions: bool) -> str | None:
    """A comment line that an engine may read as a parser directive."""
    match = DIRECTIVE.match(line)
    if match is None:
        return None
    name = match.group(1).lower()
    if name == "syntax" and number == 1 and SYNTAX.fullmatch(line):
        return None  # the standard frontend, as the first line
    if before_instructions or name in KNOWN_DIRECTIVES:
        return (
            f"line {number}: `{line.strip()}` is read as a parser directive: remove it (the "
            "grader reads only `# syntax=docker/dockerfile:1` as the first line, and `\\` as "
            "the escape character)"
        )
    return None


def parse(text: str) -> Dockerfile:
    """Instructions with continuation lines joined as the engines join them, comments dropped;
    what the reader is not sure of in `problems` (the file is then read as the engines would
    read it where possible, so that the static checks still see its instructions)."""
    instructions: list[Instruction] = []
    problems: list[str] = []
    parts: list[str] = []  # the lines of the instruction being read
    start = number = more = 0  # more: problems past the SHOWN first, counted only
    plain = text.isascii() and not ODD_IN_TEXT.search(text)  # no line to check for characters
    for number, line in enumerate(lines(text), 1):
        stripped = line.lstrip(" \t")
        comment = stripped.startswith("#")
        if not plain:
            problems += _line_problems(number, line, comment)
        if not parts:
            if comment:
                problem = _comment_problem(number, stripped, not instructions)
                problems += [problem] if problem else []
                continue
            if not stripped:
                continue
            start, line = number, stripped
        elif comment or not stripped:
            what = "a comment line" if comment else "an empty line"
            if len(problems) > SHOWN:
                more += 1
            else:
                problems.append(
                    f"line {number}: {what} inside the instruction continued from line {start}: "
                    "remove it, or end the line before without `\\`"
                )
            continue  # as the engines do: skipped, the instruction goes on
        if not _continued(line):
            parts.append(line)
            _add(instructions, problems, "".join(parts), start, number)
            parts = []
            continue
        if line.rstrip(" \t").endswith("\\\\"):
            problems.append(
                f"line {number} ends in `\\\\`: the engines read the last `\\` as a line "
                "continuation; rewrite the line"
            )
        parts.append(line.rstrip(" \t")[:-1])
    if parts:
        problems.append(
            f"line {start}: the last instruction ends in `\\`, continuing into nothing: "
            "remove the last `\\`"
        )
        _add(instructions, problems, "".join(parts), start, number)
    if len(problems) + more > SHOWN:
        problems[SHOWN:] = [f"... and {len(problems) + more - SHOWN} more such problems"]
    return Dockerfile(instructions, tuple(problems))


def _add(found: list[Instruction], problems: list[str], text: str, start: int, end: int) -> None:
    keyword, *rest = BLANKS.split(text.strip(" \t"), maxsplit=1)
    if not keyword:
        return
    ins = Instruction(keyword.upper(), rest[0] if rest else "", end, start)
    found.append(ins)
    if not keyword.isascii() or ins.keyword not in INSTRUCTIONS:
        what = (
            "ONBUILD is not used in this course"
            if ins.keyword == "ONBUILD"
            else (f"`{keyword[:40]}` is not a Dockerfile instruction the grader reads")
        )
        problems.append(f"line {start}: {what}: remove it")
    else:
        problems += _instruction_problems(ins)


def placed(option: str) -> bool:
    """Whether the reader reads `option` as the engines do: `--name=value` with letters,
    digits and `_./:@+-` in the value (and `,=` in a mount's)."""
    return bool(OPTION.fullmatch(option) or MOUNT.fullmatch(option))


def _instruction_problems(ins: Instruction) -> list[str]:
    where = f"line {ins.line}"
    found = []
    options, rest = ins.options()
    allowed = OPTIONS.get(ins.keyword, set())
    for option in options:
        if not placed(option):
            found.append(
                f"{where}: `{option[:80]}`: the grader reads options as `--name=value` with "
                "letters, digits and `_./:@+-` only (no quotes, `\\` or `$` variables)"
            )
        elif option.partition("=")[0][2:] not in allowed:
            found.append(
                f"{where}: `{ins.keyword} {option[:80]}` is not an option the grader "
                "reads: remove it"
            )
    unplaced = UNPLACED.search(rest)
    if unplaced:
        found.append(
            f"{where}: `{unplaced.group()}` outside the options the grader checks: RUN "
            "options go right after RUN, each as `--mount=...`; remove it elsewhere"
        )
    if "<<" in rest:
        found.append(
            f"{where}: `<<` starts a heredoc in newer engines: write the commands on the RUN "
            "line (or in a script you COPY), and files with COPY"
        )
    return found
