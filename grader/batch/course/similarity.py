"""Pairs of submissions whose code is unusually similar, with the matching lines side by side.

Winnowing, as MOSS does, with copydetect (PyPI) for the parts that matter: its tokenizer
(`filter_code`, Pygments) turns every variable, attribute and function name into one letter and
drops comments and string contents, so renaming changes nothing; its robust winnowing selects
the fingerprints, which are compared as sets, so reordering functions changes nothing either.
The k-gram hashes are this module's (blake2b): copydetect's use Python's salted `hash()`, which
would make the scores change from one run to the next.

Not evidence of copying by themselves: the fingerprints of the starter code (homework/) and of
the lessons (01-… to 09-…, which students are meant to copy from) are removed first, and so
are those found in more than `COMMON_SHARE` of the cohort (what every solution of the task has).
A pair is listed when one file shares at least `THRESHOLD` of its remaining fingerprints with a
file of another student. Only .py files are read (no links, at most `MAX_BYTES` each).
"""

from __future__ import annotations

import hashlib
import html
import os
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from copydetect.utils import filter_code, get_copied_slices, winnow

from grader.results.render import GRADER_ROOT, clean, clean_name

K = 25  # characters of normalised code per k-gram: shorter matches are noise
WINDOW = 6  # winnowing window: any match of K + WINDOW - 1 characters is always found
THRESHOLD = 0.5
COMMON_SHARE = 0.2
MIN_PRINTS = 15  # a file with fewer fingerprints left is too small to judge
MAX_BYTES, MAX_FILES, MAX_PAIRS, BLOCK_LINES = 200_000, 40, 20, 15
SKIP = frozenset({".venv", "__pycache__", ".git", "node_modules", "__MACOSX"})


@dataclass
class Source:
    owner: str  # the student (or "boilerplate")
    name: str  # path inside the submission
    text: str
    offsets: np.ndarray  # copydetect's map from normalised to raw positions
    positions: dict[int, list[int]]  # fingerprint -> positions in the normalised code


def read_sources(root: Path) -> dict[str, str]:
    """{relative path: text} of the .py files under root (no links followed)."""
    found: dict[str, str] = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIP and not d.startswith("."))
        for name in sorted(files):
            if not name.endswith(".py") or len(found) >= MAX_FILES:
                continue
            path = Path(folder) / name
            try:
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
            except OSError:
                continue
            with os.fdopen(fd, "rb") as f:
                raw = f.read(MAX_BYTES + 1)
            if len(raw) <= MAX_BYTES:
                found[path.relative_to(root).as_posix()] = raw.decode("utf-8", errors="replace")
    return found


def fingerprint(owner: str, name: str, text: str) -> Source:
    normalised, offsets = filter_code(text, name, language="python")
    grams = [normalised[i : i + K] for i in range(len(normalised) - K + 1)]
    hashes = np.array(
        [
            int.from_bytes(hashlib.blake2b(g.encode(), digest_size=8).digest(), "big", signed=True)
            for g in grams
        ],
        dtype=np.int64,
    )
    positions: dict[int, list[int]] = defaultdict(list)
    if len(hashes):
        selected, index = winnow(hashes, WINDOW, remove_duplicates=False)
        for h, i in zip(selected.tolist(), index.tolist(), strict=True):
            positions[h].append(i)
    return Source(owner, name, text, offsets, dict(positions))


def boilerplate_roots(root: Path = GRADER_ROOT) -> list[Path]:
    """The starter code and the lessons, where this checkout has them."""
    return [p for p in [root / "homework", *sorted(root.glob("0[1-9]-*"))] if p.is_dir()]


@dataclass(frozen=True)
class Match:
    a: Source
    b: Source
    share_a: float  # of a's fingerprints, the share found in b
    share_b: float
    shared: frozenset[int]


def find(students: Mapping[str, Path], boilerplate: Iterable[Path]) -> tuple[list[Match], int]:
    """Flagged pairs (most similar first) and the number of files compared."""
    ignored: set[int] = set()
    for root in boilerplate:
        for name, text in read_sources(root).items():
            ignored |= fingerprint("boilerplate", name, text).positions.keys()
    sources = [
        fingerprint(student, name, text)
        for student, root in sorted(students.items())
        for name, text in read_sources(root).items()
    ]
    owners: dict[int, set[str]] = defaultdict(set)
    for s in sources:
        for h in s.positions:
            owners[h].add(s.owner)
    common = max(4, int(COMMON_SHARE * len(students)))
    ignored |= {h for h, who in owners.items() if len(who) > common}
    prints = {id(s): frozenset(s.positions.keys() - ignored) for s in sources}
    postings: dict[int, list[Source]] = defaultdict(list)
    for s in sources:
        for h in prints[id(s)]:
            postings[h].append(s)
    pairs: Counter[tuple[int, int]] = Counter()
    by_id = {id(s): s for s in sources}
    for files in postings.values():
        for i, a in enumerate(files):
            for b in files[i + 1 :]:
                if a.owner != b.owner:
                    pairs[(id(a), id(b))] += 1
    matches = []
    for (ia, ib), _ in pairs.items():
        a, b = by_id[ia], by_id[ib]
        pa, pb = prints[ia], prints[ib]
        if min(len(pa), len(pb)) < MIN_PRINTS:
            continue
        shared = pa & pb
        share_a, share_b = len(shared) / len(pa), len(shared) / len(pb)
        if max(share_a, share_b) >= THRESHOLD:
            matches.append(Match(a, b, share_a, share_b, shared))
    matches.sort(key=lambda m: (-max(m.share_a, m.share_b), m.a.owner, m.b.owner, m.a.name))
    return matches, len(sources)


def _raw(source: Source, start: int, end: int) -> tuple[int, int]:
    """Lines (1-based, inclusive) of the raw text behind normalised positions [start, end)."""
    bounds = np.array([start, end])
    if len(source.offsets):
        where = np.clip(np.searchsorted(source.offsets[:, 0], bounds), 0, len(source.offsets) - 1)
        bounds = bounds + source.offsets[:, 1][where]
    first = source.text.count("\n", 0, int(bounds[0])) + 1
    return first, source.text.count("\n", 0, max(int(bounds[1]) - 1, 0)) + 1


def blocks(match: Match) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """Matching line ranges (in a, in b), in a's order."""
    in_a = sorted(p for h in match.shared for p in match.a.positions[h])
    slices = get_copied_slices(np.array(in_a), K)
    found: list[tuple[tuple[int, int], tuple[int, int]]] = []
    for start, end in zip(slices[0].tolist(), slices[1].tolist(), strict=True):
        hs = [h for h in match.shared if any(start <= p < end for p in match.a.positions[h])]
        in_b = [p for h in hs for p in match.b.positions[h]]
        if not in_b:
            continue
        a, b = _raw(match.a, start, end), _raw(match.b, min(in_b), max(in_b) + K)
        if found and a[0] <= found[-1][0][1] + 2 and 0 <= b[0] - found[-1][1][1] <= 2:
            (a0, _), (b0, _) = found[-1]
            found[-1] = ((a0, max(a[1], found[-1][0][1])), (b0, max(b[1], found[-1][1][1])))
        else:
            found.append((a, b))
    return found


def _cell(source: Source, lines: tuple[int, int]) -> str:
    text = clean(source.text).splitlines()[lines[0] - 1 : lines[1]]
    shown = [f"{lines[0] + i:>4}  {line}" for i, line in enumerate(text[:BLOCK_LINES])]
    if len(text) > BLOCK_LINES:
        shown.append(f"      … {len(text) - BLOCK_LINES} more lines")
    return "<pre>" + html.escape("\n".join(shown)) + "</pre>"


def section(matches: list[Match], files: int, students: int, boilerplate: list[Path]) -> list[str]:
    """The cohort report's section (Markdown, the side-by-side tables in HTML)."""
    names = ", ".join(p.name + "/" for p in boilerplate) or "none found"
    lines = [
        "## Similar code",
        "",
        f"{files} Python files of {students} students compared by winnowed fingerprints "
        f"(renamed names and reordered functions still match). Ignored: the starter code and "
        f"lessons ({names}) and what more than {COMMON_SHARE:.0%} of the cohort shares. "
        "A listed pair is a reason to read both, not a verdict.",
        "",
    ]
    if not matches:
        return [*lines, f"No pair of files shares {THRESHOLD:.0%} or more of its code.", ""]
    for m in matches[:MAX_PAIRS]:
        left = html.escape(f"{clean_name(m.a.owner)}/{clean_name(m.a.name)}")
        right = html.escape(f"{clean_name(m.b.owner)}/{clean_name(m.b.name)}")
        lines += [
            f"### {left} ↔ {right}: {m.share_a:.0%} / {m.share_b:.0%} of each in common",
            "",
            f"<table><tr><th>{left}</th><th>{right}</th></tr>",
        ]
        for a_lines, b_lines in blocks(m)[:6]:
            lines.append(f"<tr><td>{_cell(m.a, a_lines)}</td><td>{_cell(m.b, b_lines)}</td></tr>")
        lines += ["</table>", ""]
    if len(matches) > MAX_PAIRS:
        lines += [f"… and {len(matches) - MAX_PAIRS} more pairs.", ""]
    return lines
