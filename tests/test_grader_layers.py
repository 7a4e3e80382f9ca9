"""The grader's layout as grader/INTERNALS.md draws it: each part imports only from its own
floor or below (nothing upward), there is no import cycle, the sandbox depends on nothing else
of the grader, and the runners and file readers never import pytest."""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

GRADER = Path(__file__).resolve().parents[1] / "grader"

# floor (high to low) -> the parts on it: a package (grader/sandbox/) or a top-level module
FLOORS = {
    "entry": {"cli", "batch", "setup", "doctor"},
    "api": {"api", "preflight"},
    "checks": {"contracts", "checks"},
    "grading": {"grading"},
    "runners": {"sandbox", "containers", "environment"},
    "readers": {"submission", "uploads", "intake"},
    "domain": {"specs", "records", "homework", "diagnose", "options", "exitcodes"},
    "results": {"results"},
    "probes": {"probes"},
}
LEVEL = {part: -i for i, parts in enumerate(FLOORS.values()) for part in parts}
NO_PYTEST = {"sandbox", "containers", "environment", "submission", "results", "probes"}


def part_of(path: Path) -> str:
    return path.relative_to(GRADER).with_suffix("").parts[0]


def imports(path: Path) -> set[str]:
    """Every module `path` imports, at its top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def grader_parts(names: set[str]) -> set[str]:
    """The grader's parts among imported names (`grader.sandbox.bwrap` -> sandbox)."""
    parts = {n.split(".")[1] for n in names if n.startswith("grader.")}
    return {p for p in parts if p in LEVEL}


def graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {part: set() for part in LEVEL}
    for path in GRADER.rglob("*.py"):
        if path.parent == GRADER and path.name == "__init__.py":
            continue
        part = part_of(path)
        edges[part] |= grader_parts(imports(path)) - {part}
    return edges


def test_every_part_is_on_a_floor() -> None:
    parts = {part_of(p) for p in GRADER.rglob("*.py") if p.name != "__init__.py"}
    parts |= {p.name for p in GRADER.iterdir() if (p / "__init__.py").is_file()}
    assert parts <= set(LEVEL), (
        f"not on a floor of this test and INTERNALS.md: {parts - set(LEVEL)}"
    )


def test_nothing_imports_upward() -> None:
    upward = [
        f"{part} ({floor(part)}) imports {used} ({floor(used)})"
        for part, used_parts in graph().items()
        for used in used_parts
        if LEVEL[used] > LEVEL[part]
    ]
    assert not upward, upward


def floor(part: str) -> str:
    return next(name for name, parts in FLOORS.items() if part in parts)


def test_no_import_cycle() -> None:
    graphlib.TopologicalSorter(graph()).static_order()  # raises CycleError on a cycle


def test_the_sandbox_depends_on_nothing_else_of_the_grader() -> None:
    assert graph()["sandbox"] == set()


def test_runners_and_readers_never_import_pytest() -> None:
    for path in GRADER.rglob("*.py"):
        if part_of(path) in NO_PYTEST:
            assert not any(n.split(".")[0] == "pytest" for n in imports(path)), path


def test_internals_lists_every_floor() -> None:
    text = (GRADER / "INTERNALS.md").read_text()
    for name in FLOORS:
        assert f"| {name} |" in text, f"INTERNALS.md has no row on the floor {name!r}"
