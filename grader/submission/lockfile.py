"""What a submitted uv.lock (already parsed) and pyproject.toml lock, pin or ask for, and a
uv workspace above the submission that took it in."""

from __future__ import annotations

import difflib
import fnmatch
import re
from pathlib import Path
from typing import Any

from grader.submission import files


def locked_version(lock: dict[str, Any] | None, package: str) -> str | None:
    """The version uv.lock locks `package` at (None: not locked)."""
    packages = (lock or {}).get("package", [])
    for pkg in packages if isinstance(packages, list) else []:
        if isinstance(pkg, dict) and pkg.get("name") == package:
            version = pkg.get("version")
            return str(version) if version else None
    return None


def pinned_version(pyproject: dict[str, Any] | None, package: str) -> str | None:
    """An exact `==` pin of `package` in pyproject.toml's [project].dependencies."""
    project = (pyproject or {}).get("project", {})
    deps = project.get("dependencies", []) if isinstance(project, dict) else []
    for dep in deps if isinstance(deps, list) else []:
        name, sep, version = str(dep).partition("==")
        if sep and name.split("[")[0].strip().lower() == package:
            return version.split(";")[0].strip()
    return None


def normalized(name: str) -> str:
    """A package name as the index compares it (PEP 503): `Scikit_Learn` is `scikit-learn`."""
    return re.sub(r"[-_.]+", "-", name.strip()).lower()


def requirement_name(requirement: object) -> str | None:
    """The package a requirement string names (`fastapi[all]>=0.115; ...` -> fastapi)."""
    found = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", str(requirement))
    return normalized(found[1]) if found else None


def declared(pyproject: dict[str, Any] | None) -> set[str]:
    """Every package pyproject.toml asks for: [project].dependencies and [dependency-groups]."""
    project = (pyproject or {}).get("project", {})
    requirements = list(project.get("dependencies", []) if isinstance(project, dict) else [])
    groups = (pyproject or {}).get("dependency-groups", {})
    for group in groups.values() if isinstance(groups, dict) else []:
        requirements += group if isinstance(group, list) else []
    names = {requirement_name(r) for r in requirements if isinstance(r, str)}
    return {n for n in names if n}


def recorded(lock: dict[str, Any] | None) -> set[str] | None:
    """The packages uv.lock recorded the project as asking for (its requires-dist and
    requires-dev), None if the lock does not say."""
    packages = (lock or {}).get("package", [])
    for pkg in packages if isinstance(packages, list) else []:
        source = pkg.get("source") if isinstance(pkg, dict) else None
        if not isinstance(source, dict) or set(source.values()) != {"."}:
            continue  # not the project itself
        metadata = pkg.get("metadata", {})
        if not isinstance(metadata, dict):
            return None
        entries = list(metadata.get("requires-dist", []) or [])
        dev = metadata.get("requires-dev", {})
        for group in dev.values() if isinstance(dev, dict) else []:
            entries += group if isinstance(group, list) else []
        return {normalized(str(e["name"])) for e in entries if isinstance(e, dict) and "name" in e}
    return None


def unlocked(pyproject: dict[str, Any] | None, lock: dict[str, Any] | None) -> list[str]:
    """What pyproject.toml asks for that uv.lock does not record ([] if the lock cannot say)."""
    locked = recorded(lock)
    return [] if locked is None else sorted(declared(pyproject) - locked)


def locked_names(lock: dict[str, Any] | None) -> set[str]:
    packages = (lock or {}).get("package", [])
    return {
        normalized(str(p["name"]))
        for p in (packages if isinstance(packages, list) else [])
        if isinstance(p, dict) and "name" in p
    }


def meant(name: str, known: set[str]) -> str | None:
    """The known package `name` is a misspelling of, if one is close enough."""
    close = difflib.get_close_matches(name, sorted(known - {name}), n=1, cutoff=0.8)
    return close[0] if close else None


def workspace_above(folder: Path, levels: int = 4) -> Path | None:
    """The pyproject.toml of a uv workspace above `folder` that lists it as a member (what
    `uv init` without --no-workspace does inside a uv project), or None."""
    here = folder.resolve()
    for parent in list(here.parents)[:levels]:
        try:
            path = files.submitted(parent, "pyproject.toml")
            data = files.read_toml(path, root=parent) if path is not None else None
        except files.FileProblem:
            continue
        workspace = ((data or {}).get("tool") or {}).get("uv", {}).get("workspace", {})
        members = workspace.get("members", []) if isinstance(workspace, dict) else []
        relative = here.relative_to(parent).as_posix()
        if any(fnmatch.fnmatch(relative, str(m).rstrip("/")) for m in members or []):
            return path
    return None
