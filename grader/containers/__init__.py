"""Stage 6's container engine: detection, build, run, readiness and cleanup, as an identity
that can read nothing of the grader's (grader/INTERNALS.md, docs/reliability.md)."""

from grader.containers.engine import Engine, detect
from grader.containers.run import BUILD_SECONDS, Build, ContainerRun

__all__ = ["BUILD_SECONDS", "Build", "ContainerRun", "Engine", "detect"]
