"""What is made from a `Report` for people: the terminal summary, Gradescope's results.json and
feedback.md. What students see never shows the seed of the hidden checks, control characters
or paths of the grading machine (`Redactor`)."""

from __future__ import annotations

import re
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from grader.results.report import FAILED, PASSED, SKIPPED, STAGE_NAMES, CheckResult, Report

GRADER_ROOT = Path(__file__).resolve().parent.parent.parent
# What students never need to see: the path of an interpreter ("python" says it all), and the
# grader's own working folders (the sandbox's /tmp/submission is what their code sees: kept).
_INTERPRETER = re.compile(r"/\S*/bin/python[\d.]*(?=[\s`'\"]|$)")
_GRADER_TMP = re.compile(r"(?:/var)?/tmp/(?!submission\b)[^\s'\"`:;,)]+")


# ANSI escape sequences (CSI, OSC, two-byte ESC x), then any other control character but \n, \t.
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-_]?")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


def clean(text: str) -> str:
    """Text safe to print or render: no terminal escapes, no control or bidi characters."""
    text = text.replace("\r\n", "\n")
    return _CONTROL.sub("", _ESCAPES.sub("", text))


# What makes markup inside a line of Markdown (emphasis, code, links and images, table cells,
# strikethrough) and HTML: written as text (a backslash, or an entity), never as markup.
_MARKDOWN = re.compile(r"([\\`*_\[\]|~])")


def markdown_text(text: str) -> str:
    """One line of text for a Markdown page, shown as written: no link, image, emphasis, HTML
    tag or table cell a student's folder name or message could smuggle in."""
    text = clean_name(text).replace("&", "&amp;").replace("<", "&lt;")
    return _MARKDOWN.sub(r"\\\1", text)


def clean_name(text: str) -> str:
    """A name (a student's folder) on one line: cleaned, whitespace runs made one space."""
    return " ".join(clean(text).split()) or "?"


class Redactor:
    """Text for students: without control characters or the grading machine's paths (the
    graded folder, the datasets given as `variables`: {path: "$NAME"}, the grader, its
    Python, the home folder, temporary folders)."""

    def __init__(self, submission: str, variables: Iterable[tuple[str, str]] = ()) -> None:
        pairs: dict[str, str] = {}
        if submission:
            pairs[submission.rstrip("/")] = "."
            pairs[str(Path(submission).resolve())] = "."
        for path, name in variables:
            pairs[path] = f"${name}"
        pairs[str(GRADER_ROOT)] = "<grader>"
        pairs[sys.prefix] = "<python>"
        pairs[sys.base_prefix] = "<python>"
        pairs[str(Path.home())] = "~"
        tmp = tempfile.gettempdir()
        if tmp not in ("/tmp", "/"):  # /tmp/submission is the sandbox's own, and means something
            pairs[tmp] = "<tmp>"
        self.pairs = sorted(
            ((p, label) for p, label in pairs.items() if len(p) > 1), key=lambda pair: -len(pair[0])
        )

    def __call__(self, text: str) -> str:
        text = _INTERPRETER.sub("python", clean(text))
        for path, label in self.pairs:
            text = text.replace(path, label)
        return _GRADER_TMP.sub("<tmp>", text)


def gradescope(report: Report, redact: Redactor) -> dict[str, Any]:
    """Gradescope's results.json, as its documentation specifies the format (the schema:
    grader/schemas/gradescope-results.schema.json): statuses "passed" and "failed" only (a
    check not graded here is an informational test without points, tagged "skipped"), every
    other datum in `extra_data` (the maximum, the stage of each check, the verdict)."""
    tests = []
    for c in report.sorted_checks:
        test: dict[str, Any] = {
            "name": clean(c.title),
            "number": c.id,
            "output": redact(c.output),
            "visibility": "after_published" if c.hidden else "visible",
            "tags": [f"stage-{c.stage}"] + (["hidden"] if c.hidden else []),
            "extra_data": {"stage": c.stage, "check": c.id, "points": c.points, "hidden": c.hidden},
        }
        if c.status == SKIPPED:  # counted for neither side: no score, no status
            test["output"] = "Skipped, not counted: " + test["output"]
            test["tags"].append("skipped")
        else:
            test.update(score=c.score, max_score=c.max_score, status=c.status)
        tests.append(test)
    output = [report.warning] if report.warning else []
    output += [report.verdict[:1].upper() + report.verdict[1:]] if report.verdict else []
    output.append(f"{report.spec} spec, stages 1-{report.stage}. Isolation: {report.isolation}")
    output += [redact(n) for n in report.notes]
    if report.error:
        output.append(f"The grader could not grade this submission: {report.error}")
    return {
        "score": report.score,
        "output": redact("\n".join(output)),
        "output_format": "text",
        "test_output_format": "text",
        "test_name_format": "text",
        "visibility": "visible",
        "tests": tests,
        "extra_data": {
            "max_score": report.max_score,
            "spec": report.spec,
            "stage": report.stage,
            "isolation": report.isolation,
            "submission": report.root,
            "seconds": round(report.seconds, 1),
            "verdict": redact(report.verdict),
        },
    }


def _ids(checks: list[CheckResult], every: int) -> str:
    """'3.2, 3.3, 3.4' (or 'every check' when they are all of them)."""
    if len(checks) == every > 1:
        return f"every check ({every})"
    return ", ".join(c.id for c in checks)


def feedback(report: Report, name: str, redact: Redactor) -> str:
    """Markdown for one student: the verdict on the upload, the total, a table per stage, what
    to fix under each failure that is a cause of its own; the failures that follow from one of
    them in one line per cause."""
    lines = [f"**{clean_name(report.warning)}**", ""] if report.warning else []
    lines += [f"# Feedback for {clean_name(name)}", ""]
    if report.verdict:
        verdict = clean_name(redact(report.verdict))
        lines += [f"**{verdict[:1].upper() + verdict[1:]}.**", ""]
    lines += [f"**Score: {report.score:g} / {report.max_score:g}**", ""]
    lines += [redact(n) for n in report.notes]
    if report.error:
        lines += ["The grader could not grade this submission:", ""]
        lines += [*_fenced(redact(report.error)), ""]
    if report.notes:
        lines.append("")
    scores = report.stage_scores()
    if scores:
        lines += ["| stage | score |", "|---|---|"]
        for stage in sorted(scores):
            got, out_of = scores[stage]
            lines.append(f"| {stage} {STAGE_NAMES.get(stage, '')} | {got:g} / {out_of:g} |")
        lines.append("")
    causes = [c for c in report.sorted_checks if c in report.causes]
    following = [c for c in report.sorted_checks if c.consequence]
    skipped = [c for c in report.sorted_checks if c.status == SKIPPED]
    if causes:
        lines += ["## What to fix", ""]
    for c in causes:
        item = _cause(c, redact)
        if len(item) > 1 and lines[-1] != "":  # a section after list items
            lines.append("")
        lines += item
    if causes and lines[-1] != "":
        lines.append("")
    graded = len([c for c in report.checks if c.status != SKIPPED])
    if following:
        lines += ["## Not checked (0 points each)", ""]
        lines += _grouped(following, graded, redact)
    if not report.failed and not report.error:
        lines += ["Every graded check passed.", ""]
    if skipped:
        lines += ["## Not graded here (not counted)", ""]
        lines += _grouped(skipped, len(skipped) + 1, redact)
    return "\n".join(lines)


def _cause(c: CheckResult, redact: Redactor) -> list[str]:
    """A failure that is a cause of its own: a line of a list when its message is one short
    line, else a section with the message in a code block."""
    title = f"{c.id} {clean_name(c.title)} (0 / {c.points:g})"
    text = redact(c.output).strip() or "(no output)"
    if c.hidden:
        return [f"- **{title}**: a hidden check: its details are shown once grades are published."]
    if "\n" not in text and len(text) <= 240:
        return [f"- **{title}**: {_inline(text)}"]
    return [f"### {title}", "", *_fenced(text), ""]


def _inline(text: str) -> str:
    """Markdown inline code that no backtick run inside the text can close early."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _grouped(checks: list[CheckResult], every: int, redact: Redactor) -> list[str]:
    """One line per distinct output: the ids of its checks, then the output."""
    groups: dict[str, list[CheckResult]] = {}
    for c in checks:
        groups.setdefault(clean_name(redact(c.output)), []).append(c)
    return [f"- {_ids(group, every)}: {why}" for why, group in groups.items()] + [""]


def summary(report: Report) -> str:
    """Plain-text summary: one line per check, what to fix under each failure, the total."""
    lines = [clean(report.warning)] if report.warning else []
    lines += [
        f"Grading {clean(report.submission)} ({report.spec} spec, stages 1-{report.stage}, "
        f"{report.seed_text})",
        f"isolation: {report.isolation}",
    ]
    lines += [clean(n) for n in report.notes]
    if report.verdict:
        lines.append(f"verdict: {clean(report.verdict)}")
    if report.machine:
        lines.append(f"grading machine: {clean(report.machine)}")
    if report.error:
        lines.append(f"the grader could not grade this submission: {clean(report.error)}")
    lines.append("")
    mark = {PASSED: "PASS", FAILED: "FAIL", SKIPPED: "SKIP"}
    for c in report.sorted_checks:
        points = f"{c.score:g}/{c.points:g}"
        hidden = " (hidden)" if c.hidden else ""
        lines.append(f"  {mark[c.status]}  {points:>7}  {clean_name(c.name)}{hidden}")
        if c.status != PASSED and c.output:
            lines += [f"           {line}" for line in clean(c.output).splitlines()]
    lines += ["", f"Total: {report.score:g}/{report.max_score:g}"]
    skipped = [c for c in report.checks if c.status == SKIPPED]
    if skipped:
        lines.append(f"{len(skipped)} check(s) skipped, not counted: see SKIP above")
    return "\n".join(lines)


def _fenced(text: str) -> list[str]:
    """A Markdown code block that no backtick run inside the text can close early."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [f"{fence}text", text, fence]
