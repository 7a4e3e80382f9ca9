"""The grader's options, declared once for the three places that take them.

`grade PATH` (the CLI), the contracts' pytest plugin (`pytest grader/contracts --submission
PATH`) and `grade batch` (which hands them on to each student's grading) all add their
arguments from `OPTIONS`, so a new option is written here and nowhere else.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from grader.session import Options
from grader.specs import SPECS

Where = Literal["cli", "batch", "pytest"]
ENGINES = ("auto", "none", "docker", "podman")


def stage_text(value: str) -> str:
    """'all' or 1..7, as given (validated)."""
    if value != "all" and value not in {str(n) for n in range(1, 8)}:
        raise argparse.ArgumentTypeError(f"must be 1..7 or all, not {value!r}")
    return value


def only_text(value: str) -> str:
    """Stage numbers separated by commas, like 5,6 (validated)."""
    parts = [p.strip() for p in value.split(",") if p.strip()]
    if not parts or not all(p in {str(n) for n in range(1, 8)} for p in parts):
        raise argparse.ArgumentTypeError(f"takes stage numbers like 5,6, not {value!r}")
    return ",".join(parts)


@dataclass(frozen=True)
class Option:
    flag: str
    help: str
    default: Any = None
    type: Callable[[str], Any] = str
    choices: tuple[str, ...] | None = None
    where: tuple[Where, ...] = ("cli", "batch", "pytest")
    switch: bool = False  # an on/off flag (store_true)

    @property
    def dest(self) -> str:
        return self.flag.removeprefix("--").replace("-", "_")


# What to grade and how: each one reaches the contracts (session.Options) whichever way the
# grader was started. `batch` in `where` means `grade batch` takes it and passes it on.
OPTIONS = (
    Option("--spec", "what the submission is graded against", "churn",
           choices=tuple(sorted(SPECS))),
    Option("--stage", "grade stages 1..N (N in 1-7, or all)", "all", type=stage_text),
    Option("--only", "grade only these stages (comma-separated, e.g. 5,6)", type=only_text),
    Option("--seed", "seed of the hidden checks (keep yours to yourself)", 0, type=int),
    Option("--engine", "container engine for stage 6's build and run (default: auto-detect; "
           "none: static Dockerfile checks only)", "auto", choices=ENGINES),
    Option("--start-seconds", "how long the app may take to start listening (default 60)",
           60.0, type=float),
    Option("--url", "also probe this live deployment (stage 7)", where=("cli", "pytest")),
    Option("--docker", "require a container engine (fail instead of skipping the build)",
           False, where=("cli", "batch"), switch=True),
)  # fmt: skip


class _Adds(Protocol):
    def add_argument(self, *args: Any, **kwargs: Any) -> Any: ...


class _PytestGroup(Protocol):
    def addoption(self, *args: str, **kwargs: Any) -> None: ...


def _kwargs(option: Option, default: Any) -> dict[str, Any]:
    if option.switch:
        return {"default": default, "help": option.help, "action": "store_true"}
    kwargs: dict[str, Any] = {"default": default, "help": option.help, "type": option.type}
    if option.choices:
        kwargs["choices"] = option.choices
    return kwargs


def add_arguments(parser: _Adds, where: Where, defaults: Mapping[str, Any] | None = None) -> None:
    """Add the options of `where` (cli or batch) to an argparse parser."""
    for option in OPTIONS:
        if where in option.where:
            default = (defaults or {}).get(option.dest, option.default)
            parser.add_argument(option.flag, **_kwargs(option, default))


def add_pytest_options(group: _PytestGroup, environ: Mapping[str, str]) -> None:
    """Add the options to the contracts' pytest plugin; GRADE_SPEC etc. give the defaults."""
    for option in OPTIONS:
        if "pytest" in option.where:
            env = environ.get(f"GRADE_{option.dest.upper()}")
            default = option.default if env is None else env
            group.addoption(option.flag, **_kwargs(option, default))


def values_from_pytest(getoption: Callable[[str], Any]) -> dict[str, Any]:
    """The options' values as the pytest plugin parsed them (`config.getoption`)."""
    return {o.dest: getoption(o.dest) for o in OPTIONS if "pytest" in o.where}


def forward(values: Mapping[str, Any], where: Where) -> list[str]:
    """The command-line arguments that give `values` (parsed options) to `where`."""
    argv: list[str] = []
    for option in OPTIONS:
        value = values.get(option.dest)
        if where not in option.where or value is None or value is False:
            continue
        argv += [option.flag] if option.switch else [option.flag, str(value)]
    return argv


def session_options(submission: Path, values: Mapping[str, Any]) -> Options:
    """The contracts' `Options` from parsed option values."""
    stage = values.get("stage") or "all"
    only = values.get("only")
    return Options(
        submission=submission,
        spec=SPECS[values.get("spec") or "churn"],
        stage=7 if stage == "all" else int(stage),
        seed=int(values.get("seed") or 0),
        url=values.get("url"),
        engine=values.get("engine") or "auto",
        start_seconds=float(values.get("start_seconds") or 60.0),
        only=frozenset(int(p) for p in only.split(",")) if only else None,
    )
