"""A small Dockerfile reader for the static checks: instructions, stages, ports, users."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case: FROM, RUN, COPY, ...
    args: str  # the rest of the (joined) line

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
    """Instructions with continuation lines joined and comments dropped (heredocs not handled)."""
    instructions: list[Instruction] = []
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if current and line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        keyword, _, args = current.strip().partition(" ")
        if keyword:
            instructions.append(Instruction(keyword.upper(), args.strip()))
        current = ""
    if current.strip():
        keyword, _, args = current.strip().partition(" ")
        instructions.append(Instruction(keyword.upper(), args.strip()))
    return Dockerfile(instructions)
