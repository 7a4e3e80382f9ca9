"""Sandboxed, in probe.py: the environment's site-packages without site processing.

probe.py runs with `python -I -S`: no `.pth` file and no `sitecustomize` of the environment runs
in it. `guard` puts site-packages on `sys.path` itself, after the standard library, and lets
only the top-level modules the grader verified (grader/environment/trust.py) be imported from
it: anything else is "not found". `unguard`, in the server child (student code, no secret),
gives the environment back as a plain interpreter sees it. Standard library only.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import sys
from typing import Any


class SiteGuard(importlib.abc.MetaPathFinder):
    """Refuses the top-level modules of site-packages that are not in `allowed`."""

    def __init__(self, site: str, allowed: frozenset[str]) -> None:
        self.site = site
        self.allowed = allowed

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if "." in name or name in self.allowed:
            return None  # submodules come from their (allowed) package's own folder
        if importlib.machinery.PathFinder.find_spec(name, [self.site]) is None:
            return None  # not in site-packages: the standard library, or nowhere
        raise ModuleNotFoundError(
            f"No module named {name!r} (not imported by the grader's probe)", name=name
        )


GUARD: SiteGuard | None = None


def guard(site: str, modules: str) -> None:
    """site-packages on sys.path (after the standard library), behind the guard."""
    global GUARD
    GUARD = SiteGuard(site, frozenset(m for m in modules.split(",") if m))
    sys.meta_path.insert(0, GUARD)
    sys.path.append(site)


def unguard() -> None:
    """In the server child: the environment as a plain interpreter sees it (.pth files)."""
    if GUARD is None:
        return
    with contextlib.suppress(ValueError):
        sys.meta_path.remove(GUARD)
    import site

    site.addsitedir(GUARD.site)
    with contextlib.suppress(Exception):
        import sitecustomize  # noqa: F401
