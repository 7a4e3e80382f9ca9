"""What a submitted uv.lock (already parsed) and pyproject.toml lock or pin."""

from __future__ import annotations

from typing import Any


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
