"""What an upload is, before any check runs: empty (none of the assignment's files), or the
work of another assignment the grader knows (the churn service of the lessons handed in for
the credit-card homework). One line, said at the top of the student's feedback and under
"to look at" in the cohort report; an empty upload is not graded at all."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from grader.specs import Spec
from grader.submission import files

# The files of every stage: an upload with none of them holds nothing to grade.
FILES = (
    "train.py",
    "predict.py",
    "pyproject.toml",
    "uv.lock",
    "Dockerfile",
    "fly.toml",
    "answers.toml",
    "model.bin",
    "pipeline.bin",
)
READ = ("train.py", "predict.py")  # where the names of an assignment show


@dataclass(frozen=True)
class Verdict:
    text: str = ""  # "" for an upload of this assignment
    empty: bool = False


def names(spec: Spec) -> set[str]:
    """The names that mark code written for `spec`: its dataset, its variable, its response
    field and its features."""
    return {spec.env_var, spec.dataset_file, spec.response_probability, *spec.features}


def _found(text: str, words: Iterable[str]) -> list[str]:
    """The words of `words` that `text` uses (a feature only as a quoted name)."""
    found = []
    for word in sorted(words):
        quoted = re.search(rf"""["']{re.escape(word)}["']""", text)
        if quoted or ("_" in word and re.search(rf"\b{re.escape(word)}\b", text)):
            found.append(word)
    return found


def _exists(root: Path, name: str) -> bool:
    try:
        return files.submitted(root, name) is not None
    except files.FileProblem:  # there, but not readable as a file: the checks say why
        return True


def _code(root: Path) -> str:
    texts = []
    for name in READ:
        try:
            path = files.submitted(root, name)
            texts.append(files.read_text(path, root=root) if path is not None else "")
        except files.FileProblem:
            continue
    return "\n".join(texts)


def verdict(root: Path, spec: Spec, known: Iterable[Spec]) -> Verdict:
    """The verdict on the upload at `root`, graded against `spec` (`known`: every spec)."""
    if not any(_exists(root, name) for name in FILES):
        shown = ", ".join(FILES[:4])
        return Verdict(
            f"the upload is empty: it holds none of the files of {spec.title or spec.name} "
            f"({shown}, ...)",
            empty=True,
        )
    code = _code(root)
    others = [other for other in known if other.name != spec.name]
    own = names(spec)
    shared = set().union(*(names(other) for other in others))
    if _found(code, own - shared):
        return Verdict()
    for other in others:
        theirs = _found(code, names(other) - own)
        if len(theirs) >= 2:
            return Verdict(
                f"this looks like {other.title or other.name}, not {spec.title or spec.name}: "
                f"train.py and predict.py use {', '.join(theirs[:4])} and none of "
                f"{spec.env_var}, {spec.response_probability} or the features it asks for"
            )
    return Verdict()
