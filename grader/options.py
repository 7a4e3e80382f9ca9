"""The grader's options: their defaults (`Options`, the one place they live) and their flags,
declared once for the places that take them: `grade` (the CLI), `grade batch` (which hands them
on to each student's grading) and the contracts' pytest plugin (`pytest grader/contracts`)."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from grader.specs import SPECS, Spec

Where = Literal["cli", "batch", "pytest"]
ENGINES = ("auto", "none", "docker", "podman")


@dataclass(frozen=True)
class Options:
    """What to grade and how. Every default of the grader is written here, once."""

    submission: Path = Path(".")
    spec_name: str = "churn"
    stage: int = 7  # grade stages 1..stage
    only: frozenset[int] | None = None  # grade just these stages (each <= stage)
    seed: int = 0
    engine: str = "auto"  # auto | none | docker | podman
    require_engine: bool = False  # a missing engine fails stage 6 instead of skipping it
    url: str | None = None
    start_seconds: float = 60.0
    require_sandbox: bool = False  # refuse to grade without bubblewrap (implied by a seed)
    no_sandbox: bool = False  # grade without bubblewrap anyway (every report says so first)

    @property
    def spec(self) -> Spec:
        return SPECS[self.spec_name]

    def problems(self) -> list[str]:
        """What contradicts itself in these options (usage errors)."""
        found = []
        if self.require_engine and self.engine == "none":
            found.append("--docker contradicts --engine none")
        if self.spec_name not in SPECS:
            found.append(f"--spec must be one of {', '.join(sorted(SPECS))}")
        if self.require_sandbox and self.no_sandbox:
            found.append("--require-sandbox contradicts --no-sandbox")
        return found

    def to_json(self) -> dict[str, Any]:
        """The options as JSON data (how `grade batch` hands them to each student's grader:
        on its standard input, never on a command line another process could read)."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["submission"] = str(self.submission)
        data["only"] = sorted(self.only) if self.only is not None else None
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Options:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["submission"] = Path(values.get("submission", "."))
        if values.get("only") is not None:
            values["only"] = frozenset(values["only"])
        return replace(DEFAULTS, **values)


DEFAULTS = Options()


def read_seed(value: str) -> int:
    """The seed in the file `value` (an integer), from a file only its owner can read."""
    path = Path(value)
    try:
        mode = path.stat().st_mode
        text = path.read_text().strip()
    except OSError as e:
        raise argparse.ArgumentTypeError(f"cannot read {value}: {e.strerror}") from None
    if mode & 0o044:
        raise argparse.ArgumentTypeError(
            f"{value} can be read by other users: `chmod 600 {value}` (keep your seed secret)"
        )
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value} holds no integer seed") from None


def stage_number(value: str) -> int:
    """'all' or 1..7 (validated) as the last stage graded."""
    if value == "all":
        return 7
    if value not in {str(n) for n in range(1, 8)}:
        raise argparse.ArgumentTypeError(f"must be 1..7 or all, not {value!r}")
    return int(value)


def stage_set(value: str) -> frozenset[int]:
    """Stage numbers separated by commas, like 5,6 (validated)."""
    parts = [p.strip() for p in value.split(",") if p.strip()]
    if not parts or not all(p in {str(n) for n in range(1, 8)} for p in parts):
        raise argparse.ArgumentTypeError(f"takes stage numbers like 5,6, not {value!r}")
    return frozenset(int(p) for p in parts)


@dataclass(frozen=True)
class OptionSpec:
    """One option's flag and help; its default is the `Options` field `dest`."""

    flag: str
    dest: str
    help: str
    type: Callable[[str], Any] = str
    choices: tuple[str, ...] | None = None
    where: tuple[Where, ...] = ("cli", "batch", "pytest")
    switch: bool = False  # an on/off flag (store_true)

    @property
    def default(self) -> Any:
        return getattr(DEFAULTS, self.dest, None)


OPTION_SPECS = (
    OptionSpec(
        "--spec", "spec_name", "what the submission is graded against", choices=tuple(sorted(SPECS))
    ),
    OptionSpec("--stage", "stage", "grade stages 1..N (N in 1-7, or all)", type=stage_number),
    OptionSpec(
        "--only", "only", "grade only these stages (comma-separated, e.g. 5,6)", type=stage_set
    ),
    OptionSpec("--seed", "seed", "seed of the hidden checks (keep yours to yourself)", type=int),
    OptionSpec(
        "--seed-file",
        "seed_file",
        "read the seed from this file (chmod 600): unlike "
        "--seed, no other process of the machine can read it",
        type=read_seed,
        where=("cli", "batch"),
    ),
    OptionSpec(
        "--require-sandbox",
        "require_sandbox",
        "refuse to grade without bubblewrap (a seeded grading and `grade batch` always do)",
        switch=True,
    ),
    OptionSpec(
        "--no-sandbox",
        "no_sandbox",
        "grade without bubblewrap where it cannot start (every report then says so first)",
        switch=True,
    ),
    OptionSpec(
        "--engine",
        "engine",
        "container engine for stage 6's build and run (default: "
        "auto-detect; none: static Dockerfile checks only)",
        choices=ENGINES,
    ),
    OptionSpec(
        "--docker",
        "require_engine",
        "require a container engine (fail instead of skipping the build)",
        switch=True,
    ),
    OptionSpec(
        "--start-seconds",
        "start_seconds",
        "how long the app may take to start listening (default 60)",
        type=float,
    ),
    OptionSpec(
        "--url", "url", "also probe this live deployment (stage 7)", where=("cli", "pytest")
    ),
)


class _Adds(Protocol):
    def add_argument(self, *args: Any, **kwargs: Any) -> Any: ...


@runtime_checkable
class _PytestGroup(Protocol):
    def addoption(self, *args: str, **kwargs: Any) -> None: ...


def _kwargs(option: OptionSpec, default: Any) -> dict[str, Any]:
    if option.switch:
        return {
            "default": default,
            "help": option.help,
            "action": "store_true",
            "dest": option.dest,
        }
    kwargs: dict[str, Any] = {
        "default": default,
        "help": option.help,
        "type": option.type,
        "dest": option.dest,
    }
    if option.choices:
        kwargs["choices"] = option.choices
    return kwargs


def add_arguments(
    parser: _Adds | _PytestGroup, where: Where, defaults: Mapping[str, Any] | None = None
) -> None:
    """Add the options of `where` to an argparse parser (or pytest's option group)."""
    for option in OPTION_SPECS:
        if where in option.where:
            default = (defaults or {}).get(option.dest, option.default)
            kwargs = _kwargs(option, default)
            if isinstance(parser, _PytestGroup):
                parser.addoption(option.flag, **kwargs)
            else:
                parser.add_argument(option.flag, **kwargs)


def from_values(submission: Path, values: Mapping[str, Any]) -> Options:
    """`Options` from parsed option values (argparse's or pytest's), defaults for the rest."""
    known = {f.name for f in fields(Options)}
    given = {k: v for k, v in values.items() if k in known and v is not None}
    if values.get("seed_file") is not None:  # read by argparse already
        given["seed"] = values["seed_file"]
    return replace(DEFAULTS, submission=submission, **given)


def to_argv(options: Options, where: Where) -> list[str]:
    """The command-line arguments that give `options` to `where` (defaults left out)."""
    argv: list[str] = []
    for option in OPTION_SPECS:
        value = getattr(options, option.dest, None)
        if where not in option.where or value is None or value == option.default:
            continue
        if option.switch:
            argv.append(option.flag)
        elif isinstance(value, frozenset):
            argv += [option.flag, ",".join(map(str, sorted(value)))]
        else:
            argv += [option.flag, str(value)]
    return argv
