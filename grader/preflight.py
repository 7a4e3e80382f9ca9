"""Before any student code runs: will this grading be protected, and may it go on without it?

A seeded grading, a cohort (`grade batch`), Gradescope and Classroom (`--require-sandbox`)
refuse to start without bubblewrap unless `--no-sandbox` says to go on; then every report says
so first. A student's own check without it goes on with a prominent warning. Without
bubblewrap no seed may come on a command line (every process of the machine can read those).
Shared folders that are not the grader's own stop everything."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from grader.environment.install import shared_root
from grader.options import Options
from grader.sandbox import bwrap_available
from grader.sandbox.bwrap import bwrap_problem
from grader.sandbox.owned import NotOurs, own_dir
from grader.sandbox.uids import locks_folder, unreachable


@dataclass(frozen=True)
class Verdict:
    """What the grading may do: refused (why), or go on (with a warning for every report)."""

    refusal: str = ""
    warning: str = ""
    mode: str = "bubblewrap"  # bubblewrap | uid | none


def mode() -> str:
    """How student code would run here: "bubblewrap", "uid" (no bubblewrap, an unprivileged
    uid of its own: the grader runs as root) or "none" (the grader's own uid)."""
    if bwrap_available():
        return "bubblewrap"
    return "uid" if os.geteuid() == 0 else "none"


def check(options: Options, cohort: bool = False, seed_in_argv: bool = False) -> Verdict:
    """The verdict for grading with `options` on this machine (see the module docstring)."""
    how = mode()
    try:
        own_dir(shared_root())
        if os.geteuid() == 0:
            own_dir(locks_folder(), 0o700)
    except NotOurs as e:
        return Verdict(str(e), mode=how)
    if how == "bubblewrap":
        return Verdict(mode=how)
    why = bwrap_problem()
    required = options.require_sandbox or options.seed != 0 or cohort
    if required and not options.no_sandbox:
        reason = "a cohort" if cohort else "a seeded grading" if options.seed else "this grading"
        return Verdict(
            f"{reason} needs the sandbox, but {why}. Set this machine up (`sudo uv run --group "
            "grader grade setup`; `grade doctor` says what is missing), or give --no-sandbox to "
            "grade "
            "without it (every report will say so first)",
            mode=how,
        )
    if seed_in_argv and options.seed != 0:
        return Verdict(
            "without the sandbox every process of this machine can read the command line, the "
            "seed with it: give the seed with --seed-file FILE (chmod 600 FILE)",
            mode=how,
        )
    if how == "uid":
        blocked = unreachable([Path(sys.executable)])
        if blocked:
            return Verdict(
                f"without bubblewrap student code runs as an unprivileged user, who cannot run "
                f"{blocked[0]}: install Python and the grader where every user can read them "
                "(not under /root), or install bubblewrap (`grade setup`, as root)",
                mode=how,
            )
    given = " (--no-sandbox)" if options.no_sandbox else ""
    who = "an unprivileged uid of its own" if how == "uid" else "the grader's own user"
    return Verdict(
        warning=f"WARNING: graded WITHOUT the sandbox{given}: {why}. Student code ran as {who}, "
        "with limits and timeouts but no file-system or network isolation",
        mode=how,
    )
