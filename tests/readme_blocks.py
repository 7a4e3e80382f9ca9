"""Parse the shell blocks of a README and the markers that tell the test harness how to run them.

Conventions (an HTML comment on the line right before a fenced block):

    <!-- readme-test: skip (reason) -->       not run here; the reason is required
    <!-- readme-test: server URL -->           a long-running server: started in the background,
                                               polled on URL until it answers, stopped at the end
    <!-- readme-test: suite -->                the repository's test command (.ci/run runs it)

A ```text block that follows a shell block (only blank lines between) is its expected output:
its lines must appear in what the command prints, in order; a line `...` stands for any lines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

SHELLS = {"bash", "sh", "shell", "console"}
MARKER = re.compile(r"^<!--\s*readme-test:\s*(?P<kind>skip|server|suite)\b\s*(?P<arg>.*?)\s*-->$")
FENCE = re.compile(r"^(?P<fence>```+)(?P<lang>[\w-]*)\s*$")


@dataclass
class Block:
    readme: Path
    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    marker: str | None = None  # skip | server | suite
    marker_arg: str = ""
    expected: list[str] | None = field(default=None)

    @property
    def where(self) -> str:
        return f"{self.readme.name}:{self.line}"


def parse(readme: Path) -> list[Block]:
    """All fenced blocks that are shell commands, with their markers and expected outputs."""
    lines = readme.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    last_shell: Block | None = None
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            if lines[i].strip():  # prose between a command and a text block: not its output
                last_shell = None
            i += 1
            continue
        fence, lang, start = m["fence"], m["lang"].lower(), i
        j = i + 1
        while j < len(lines) and lines[j].strip() != fence:
            j += 1
        body = lines[i + 1 : j]
        prev = lines[start - 1].strip() if start > 0 else ""
        marker = MARKER.match(prev)
        if lang in SHELLS:
            block = Block(
                readme=readme,
                line=start + 1,
                lang=lang,
                code="\n".join(body),
                marker=marker["kind"] if marker else None,
                marker_arg=marker["arg"] if marker else "",
            )
            blocks.append(block)
            last_shell = block
        elif lang == "text" and last_shell is not None and last_shell.expected is None:
            last_shell.expected = body
            last_shell = None
        else:
            last_shell = None
        i = j + 1
    return blocks


def missing_lines(expected: list[str], actual: str) -> str | None:
    """None when `expected` appears in `actual` (chunks between `...` lines contiguous, in order);
    otherwise the first chunk that was not found."""
    out = [line.rstrip() for line in actual.splitlines()]
    chunks: list[list[str]] = [[]]
    for line in expected:
        if line.strip() == "...":
            chunks.append([])
        else:
            chunks[-1].append(line.rstrip())
    pos = 0
    for chunk in (c for c in chunks if c):
        for k in range(pos, len(out) - len(chunk) + 1):
            if out[k : k + len(chunk)] == chunk:
                pos = k + len(chunk)
                break
        else:
            return "\n".join(chunk)
    return None
