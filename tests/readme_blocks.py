"""Parse the shell blocks of a README and the markers that tell the test harness how to run them.

Conventions (an HTML comment on the line right before a fenced block):

    <!-- readme-test: skip (reason) -->       not run here; the reason is required
    <!-- readme-test: server URL -->           a long-running server: started in the background,
                                               polled on URL until it answers, stopped at the end
    <!-- readme-test: suite -->                the repository's test command (.ci/run runs it)

A ```text block that follows a shell block (only blank lines between) is its expected output:
its lines must appear in what the command prints, in order; a line `...` stands for any lines,
and `…` right after a digit for any further digits (`0.4279…` matches `0.4279251482282911`).
"""

from __future__ import annotations

import difflib
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
        patterns = [re.compile(r"\d*".join(map(re.escape, line.split("…")))) for line in chunk]
        for k in range(pos, len(out) - len(chunk) + 1):
            if all(p.fullmatch(o) for p, o in zip(patterns, out[k : k + len(chunk)], strict=True)):
                pos = k + len(chunk)
                break
        else:
            return "\n".join(chunk)
    return None


@dataclass
class DiffBlock:
    """A ```diff block: `--- old` / `+++ new` (paths from the repository root), then lines of
    `diff -u old new`. Hunk headers (`@@ … @@`) may be left out; a line `...` leaves out lines
    (a shortened diff). Without the two header lines, old and new are empty."""

    readme: Path
    line: int
    old: str
    new: str
    lines: list[str]

    @property
    def shortened(self) -> bool:
        return any(line.strip() == "..." for line in self.lines)


def diff_blocks(readme: Path) -> list[DiffBlock]:
    lines = readme.read_text(encoding="utf-8").splitlines()
    found: list[DiffBlock] = []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        j = i + 1
        while j < len(lines) and lines[j].strip() != m["fence"]:
            j += 1
        body = lines[i + 1 : j]
        if m["lang"].lower() == "diff":
            if len(body) >= 2 and body[0].startswith("--- ") and body[1].startswith("+++ "):
                rest = [line for line in body[2:] if not line.startswith("@@")]
                found.append(DiffBlock(readme, i + 1, body[0][4:], body[1][4:], rest))
            else:
                found.append(DiffBlock(readme, i + 1, "", "", body))
        i = j + 1
    return found


def real_diff(root: Path, old: str, new: str) -> list[str]:
    """`diff -u old new` without its file and hunk headers."""
    a = (root / old).read_text().splitlines()
    b = (root / new).read_text().splitlines()
    return [
        line
        for line in difflib.unified_diff(a, b, lineterm="")
        if not line.startswith(("---", "+++", "@@"))
    ]


def _find(real: list[str], chunk: list[str], start: int) -> int | None:
    n = len(chunk)
    return next((k for k in range(start, len(real) - n + 1) if real[k : k + n] == chunk), None)


def diff_problems(root: Path, readme: Path) -> list[str]:
    """What is wrong with the README's diff blocks: a block without its `--- old`/`+++ new`
    header, a part that is not in the real diff (contiguous, in order), or, unless a block of
    that pair is shortened with `...`, a changed line of the real diff that no block shows."""
    problems: list[str] = []
    shown: dict[tuple[str, str], set[int]] = {}
    shortened: set[tuple[str, str]] = set()
    name = readme.relative_to(root) if readme.is_relative_to(root) else readme
    for block in diff_blocks(readme):
        where = f"{name}:{block.line}"
        if not block.old:
            problems.append(f"{where}: a diff block starts with `--- old` and `+++ new` lines")
            continue
        pair = (block.old, block.new)
        real = real_diff(root, *pair)
        covered = shown.setdefault(pair, set())
        if block.shortened:
            shortened.add(pair)
        chunks: list[list[str]] = [[]]
        for line in block.lines:
            if line.strip() == "...":
                chunks.append([])
            else:
                chunks[-1].append(line)
        pos = 0
        for chunk in (c for c in chunks if c):
            k = _find(real, chunk, pos)
            if k is None:
                problems.append(
                    f"{where}: not what `diff -u {block.old} {block.new}` prints:\n"
                    + "\n".join(chunk[:5])
                )
                break
            covered.update(range(k, k + len(chunk)))
            pos = k + len(chunk)
    for pair, covered in shown.items():
        if pair in shortened:
            continue
        real = real_diff(root, *pair)
        missing = [
            line for k, line in enumerate(real) if line.startswith(("+", "-")) and k not in covered
        ]
        if missing:
            problems.append(f"{name}: `diff -u {pair[0]} {pair[1]}` lines not shown: {missing[:5]}")
    return problems
