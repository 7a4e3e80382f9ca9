"""The environment a submission's uv.lock describes, installed by the grader (`install`); the
interpreters uv uses in the sandbox (`interpreters`); what of an environment the probe may
import (`trust`)."""

from grader.environment.install import LockedEnv, foreign_sources, install, missing_module
from grader.environment.interpreters import real_uv, uv_interpreter

__all__ = ["LockedEnv", "foreign_sources", "install", "missing_module", "real_uv", "uv_interpreter"]
