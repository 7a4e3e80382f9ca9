"""The cohort report: how a whole class did, check by check.

`write_report(out, reports, run)` writes OUT/report.md with three PNG charts in OUT/charts/:
the pass rate of every check, the histogram of total scores (as % of the run's maximum) and
the most common failures (root causes: a failure that follows from another is counted at the
check that caused it); a table of each stage's mean score, and the submissions an instructor
should look at by hand (empty uploads, another assignment's work, nested uploads, grader
errors, checks this machine could not grade for one student, unusually long gradings).
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from grader.batch.runner import redactor
from grader.results.atomic import write_atomic
from grader.results.render import clean_name, markdown_text
from grader.results.report import (
    PASSED,
    SKIPPED,
    STAGE_NAMES,
    Report,
    RunInfo,
    graded_points,
    max_points,
    parse_check_id,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes

TOP_FAILURES = 10
SLOW_FACTOR = 3.0  # a grading this many times the median (and over a minute) is worth a look


def first_line(report: Report, text: str, width: int = 90) -> str:
    """The first meaningful line of a failure output, without this machine's paths."""
    for line in redactor(report)(text).splitlines():
        line = line.strip().strip("`")
        if line:
            return line if len(line) <= width else line[: width - 1] + "…"
    return "(no output)"


def pass_rates(reports: Mapping[str, Report]) -> list[tuple[str, float, int]]:
    """(check, share of students who passed it, how many students were graded on it), in check
    order; a skipped check (no container engine, no --url) grades nobody."""
    seen: dict[str, list[bool]] = {}
    titles: dict[str, str] = {}
    for report in reports.values():
        for c in report.checks:
            if c.status != SKIPPED:
                seen.setdefault(c.id, []).append(c.status == PASSED)
                titles[c.id] = clean_name(c.title)
    return [
        (f"{cid} {titles[cid]}", sum(passed) / len(passed), len(passed))
        for cid, passed in sorted(seen.items(), key=lambda kv: parse_check_id(kv[0]))
    ]


def failures(reports: Mapping[str, Report]) -> list[tuple[str, str, int]]:
    """(check, first line of its output, number of students) for the commonest failures that
    are causes of their own ("not checked because 3.1 failed" is counted at 3.1)."""
    counts: Counter[tuple[str, str]] = Counter()
    for report in reports.values():
        for c in report.causes:
            counts[(f"{c.id} {clean_name(c.title)}", first_line(report, c.output))] += 1
    return [(name, message, n) for (name, message), n in counts.most_common(TOP_FAILURES)]


def percent(report: Report, out_of: float) -> float:
    return 100.0 * report.score / out_of if out_of else 0.0


def look_at(reports: Mapping[str, Report]) -> list[tuple[str, str]]:
    """(student, why) for the submissions an instructor should open by hand."""
    seconds = [r.seconds for r in reports.values() if not r.error]
    median = statistics.median(seconds) if seconds else 0.0
    graded = graded_points(reports.values())
    found = []
    for name, report in sorted(reports.items()):
        if report.verdict:
            found.append((name, clean_name(redactor(report)(report.verdict))))
        if report.error and not report.verdict:
            why = first_line(report, report.error)
            found.append((name, f"the grader could not grade it: {why}"))
        for note in report.notes:
            found.append((name, clean_name(note)))
        passed = any(c.status == PASSED for c in report.checks)
        if not report.error and not report.verdict and report.checks and not passed:
            found.append((name, "no check passed (an empty, misplaced or broken upload?)"))
        missed = [c.id for c in report.checks if c.status == SKIPPED and c.id in graded]
        if missed:
            why = "not graded for this student, but for others (the machine changed?): regrade"
            found.append((name, f"{', '.join(missed)} {why}"))
        if median and report.seconds > max(60.0, SLOW_FACTOR * median):
            found.append((name, f"graded in {report.seconds:.0f} s (median {median:.0f} s)"))
    return found


# -- charts -------------------------------------------------------------------------------------
def _label_bars(ax: Axes, values: list[float], text: list[str], limit: float) -> None:
    """The value at the end of each bar (inside it when the bar is long)."""
    for y, (value, label) in enumerate(zip(values, text, strict=True)):
        inside = value > 0.85 * limit
        x = value - 0.01 * limit if inside else value + 0.01 * limit
        ax.text(
            x,
            y,
            label,
            va="center",
            ha="right" if inside else "left",
            fontsize=7,
            color="white" if inside else "black",
        )


def _chart_pass_rates(rates: list[tuple[str, float, int]], path: Path) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, max(2.5, 0.28 * len(rates) + 1)))
    names = [name if len(name) <= 52 else name[:51] + "…" for name, _, _ in rates]
    values = [100 * rate for _, rate, _ in rates]
    colors = ["#2a9d8f" if v >= 80 else "#e9c46a" if v >= 50 else "#e76f51" for v in values]
    # A 0 % check is the strongest signal: it keeps a thin red bar, not an empty row.
    ax.barh(range(len(values)), [max(v, 1.0) for v in values], color=colors)
    _label_bars(ax, values, [f"{v:.0f} %" for v in values], 100)
    ax.set_yticks(range(len(values)), names, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("students who passed (%)")
    ax.set_title("Pass rate per check")
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def _chart_histogram(scores: list[float], path: Path) -> None:
    import matplotlib.pyplot as plt
    from matplotlib.container import BarContainer
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(7, 3.5))
    counts, _, bars = ax.hist(
        scores, bins=list(range(0, 101, 10)), color="#264653", edgecolor="white"
    )
    if isinstance(bars, BarContainer):  # one data set: always
        ax.bar_label(bars, [f"{n:.0f}" if n else "" for n in counts], fontsize=7)
    ax.set_xlim(0, 100)
    ax.set_xlabel("total score (% of the maximum)")
    ax.set_ylabel("students")
    ax.set_title(f"Scores of {len(scores)} students")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.margins(y=0.15)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def _chart_failures(top: list[tuple[str, str, int]], path: Path) -> None:
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(10, max(2.5, 0.4 * len(top) + 1)))
    labels = [_short(f"{name.split(' ')[0]} {message}", 70) for name, message, _ in top]
    counts = [n for _, _, n in top]
    ax.barh(range(len(top)), counts, color="#e76f51")
    _label_bars(ax, [float(n) for n in counts], [str(n) for n in counts], max(counts) * 1.15)
    ax.set_yticks(range(len(top)), labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, max(counts) * 1.15)
    ax.set_xlabel("students")
    ax.set_title("Most common failures")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.savefig(path, dpi=110, bbox_inches="tight")  # the whole of every label
    plt.close(fig)


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _cell(text: str) -> str:
    return markdown_text(text)


def write_report(
    out: Path, reports: Mapping[str, Report], run: RunInfo | None = None, extra: Sequence[str] = ()
) -> Path:
    """Write OUT/report.md and its charts, then the `extra` sections (grader.batch.course's); return
    the report's path."""
    import matplotlib

    matplotlib.use("Agg")  # no display: render straight to PNG
    charts = out / "charts"
    charts.mkdir(parents=True, exist_ok=True)
    warnings = sorted({r.warning for r in reports.values() if r.warning})
    lines = [f"**{markdown_text(w)}**" for w in warnings] + ([""] if warnings else [])
    lines += ["# Cohort report", ""]
    if run is not None:
        lines += [run.describe(), ""]
    isolation = sorted({r.isolation for r in reports.values() if r.isolation})
    if len(isolation) > 1:  # an empty upload ran nothing: not an isolation of its own
        isolation = [text for text in isolation if text != "none needed"]
    lines += [f"Isolation: {text}" for text in isolation] + ([""] if isolation else [])
    machine = sorted({r.machine for r in reports.values() if r.machine})
    lines += [f"Grading machine: {text}" for text in machine] + ([""] if machine else [])
    path = out / "report.md"
    if not reports:
        write_atomic(path, "\n".join([*lines, "No graded submissions yet.", "", *extra]))
        return path

    total_max, stage_max = max_points(reports.values())
    scores = [percent(r, total_max) for r in reports.values()]
    full = sum(1 for s in scores if s >= 99.999)
    lines += [
        f"{len(scores)} students; mean {statistics.mean(scores):.1f} %, median "
        f"{statistics.median(scores):.1f} %, {full} with full marks (maximum {total_max:g} "
        "points, the same for everyone).",
        "",
    ]
    if stage_max:
        lines += ["| stage | mean score |", "|---|---|"]
        for stage in sorted(stage_max):
            got = [r.stage_scores().get(stage, (0.0, 0.0))[0] for r in reports.values()]
            mean = 100 * statistics.mean(got) / stage_max[stage] if stage_max[stage] else 0.0
            lines.append(f"| {stage} {STAGE_NAMES.get(stage, '')} | {mean:.0f} % |")
        lines.append("")

    lines += [*_sections(reports, charts, scores), *extra]
    write_atomic(path, "\n".join(lines))
    return path


def _sections(reports: Mapping[str, Report], charts: Path, scores: list[float]) -> list[str]:
    """The report's sections after its head: what to look at, scores, checks, failures."""
    lines = ["## Submissions to look at", ""]
    outliers = look_at(reports)
    lines += [f"- {_cell(name)}: {_cell(why)}" for name, why in outliers] or ["None."]
    lines.append("")

    _chart_histogram(scores, charts / "scores.png")
    lines += ["## Scores", "", "![score histogram](charts/scores.png)", ""]

    rates = pass_rates(reports)
    if rates:
        _chart_pass_rates(rates, charts / "pass-rates.png")
        lines += ["## Pass rate per check", "", "![pass rate per check](charts/pass-rates.png)", ""]
        lines += ["| check | passed | students |", "|---|---|---|"]
        lines += [f"| {_cell(name)} | {100 * rate:.0f} % | {n} |" for name, rate, n in rates]
        lines.append("")

    lines += ["## Most common failures", ""]
    top = failures(reports)
    if top:
        _chart_failures(top, charts / "failures.png")
        lines += ["![most common failures](charts/failures.png)", ""]
        lines += ["| check | message | students |", "|---|---|---|"]
        lines += [f"| {_cell(name)} | {_cell(msg)} | {n} |" for name, msg, n in top]
    else:
        lines.append("No check failed.")
    lines.append("")
    return lines
