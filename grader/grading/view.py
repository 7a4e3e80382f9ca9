"""What a sandboxed command may see of the host besides the system folders (read-only): the one
list, decided before the sandbox exists."""

from __future__ import annotations

from pathlib import Path

from grader.environment import LockedEnv
from grader.grading.probe import PROBES


def visible(
    dataset: Path | None,
    env: LockedEnv,
    uv: str | None,
    uv_python: Path | None,
) -> list[Path]:
    """The grader's probes, uv and the interpreter installation it runs `uv lock --check` with,
    the dataset, and the submission's locked environment with its base interpreter. Never the
    rest of the grader, `$HOME`, other submissions or the course repository."""
    paths = [PROBES]
    if uv is not None:
        paths.append(Path(uv))
    if uv_python is not None:
        paths.append(uv_python)
    if dataset is not None:
        paths.append(dataset)
    for path in (env.prefix, env.base_prefix()):
        if path is not None:
            paths.append(path)
    return paths
