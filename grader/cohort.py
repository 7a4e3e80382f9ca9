"""The cohort report: how a whole class did, check by check.

`write_report(out, results_by_student)` writes OUT/report.md with three PNG charts in
OUT/charts/: the pass rate of every check, the histogram of total scores (as % of the maximum)
and the most common failure messages, plus a table of each stage's mean score.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: render straight to PNG

import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator

from grader.batch import STAGES, stage_scores, write_atomic

Results = dict[str, Any]
TOP_FAILURES = 10


def first_line(text: str, width: int = 90) -> str:
    """The first meaningful line of a failure output, with numbers kept but paths shortened."""
    for line in str(text).splitlines():
        line = line.strip().strip("`")
        if line:
            line = re.sub(r"/tmp/[^\s'\"]+", "<tmp>", line)
            return line if len(line) <= width else line[: width - 1] + "…"
    return "(no output)"


def pass_rates(all_results: Mapping[str, Results]) -> list[tuple[str, float, int]]:
    """(check name, share of students who passed it, how many students were graded on it), in
    check order; a skipped check (no container engine, no --url) grades nobody."""
    seen: dict[str, list[bool]] = {}
    for results in all_results.values():
        for test in results.get("tests", []):
            if test.get("status") == "skipped":
                continue
            seen.setdefault(str(test.get("name", "?")), []).append(test.get("status") == "passed")

    def order(name: str) -> tuple[float, ...]:
        numbers = re.match(r"^(\d+)\.(\d+)", name)
        return (float(numbers[1]), float(numbers[2])) if numbers else (99.0, 99.0)

    return [
        (name, sum(passed) / len(passed), len(passed))
        for name, passed in sorted(seen.items(), key=lambda kv: (order(kv[0]), kv[0]))
    ]


def failures(all_results: Mapping[str, Results]) -> list[tuple[str, str, int]]:
    """(check name, first line of its output, number of students) for the commonest failures."""
    counts: Counter[tuple[str, str]] = Counter()
    for results in all_results.values():
        for test in results.get("tests", []):
            if test.get("status") == "failed":
                counts[(str(test.get("name", "?")), first_line(test.get("output", "")))] += 1
    return [(name, message, n) for (name, message), n in counts.most_common(TOP_FAILURES)]


def percent(results: Results) -> float:
    max_score = float(results.get("max_score", 0) or 0)
    return 100.0 * float(results.get("score", 0)) / max_score if max_score else 0.0


def _chart_pass_rates(rates: list[tuple[str, float, int]], path: Path) -> None:
    height = max(2.5, 0.28 * len(rates) + 1)
    fig, ax = plt.subplots(figsize=(10, height))
    names = [name if len(name) <= 52 else name[:51] + "…" for name, _, _ in rates]
    values = [100 * rate for _, rate, _ in rates]
    colors = ["#2a9d8f" if v >= 80 else "#e9c46a" if v >= 50 else "#e76f51" for v in values]
    ax.barh(range(len(values)), values, color=colors)
    ax.set_yticks(range(len(values)), names, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("students who passed (%)")
    ax.set_title("Pass rate per check")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _chart_histogram(scores: list[float], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.hist(scores, bins=list(range(0, 101, 10)), color="#264653", edgecolor="white")
    ax.set_xlim(0, 100)
    ax.set_xlabel("total score (% of the maximum)")
    ax.set_ylabel("students")
    ax.set_title(f"Scores of {len(scores)} students")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _chart_failures(top: list[tuple[str, str, int]], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(9, max(2.5, 0.35 * len(top) + 1)))
    labels = [f"{name.split(' ')[0]} {message}"[:80] for name, message, _ in top]
    ax.barh(range(len(top)), [n for _, _, n in top], color="#e76f51")
    ax.set_yticks(range(len(top)), labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("students")
    ax.set_title("Most common failures")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def write_report(out: Path, all_results: Mapping[str, Results], title: str | None = None) -> Path:
    """Write OUT/report.md and its charts; return the report's path."""
    charts = out / "charts"
    charts.mkdir(parents=True, exist_ok=True)
    rates = pass_rates(all_results)
    top = failures(all_results)
    scores = [percent(r) for r in all_results.values()]

    lines = [f"# {title or 'Cohort report'}", ""]
    if not all_results:
        lines += ["No graded submissions yet.", ""]
        path = out / "report.md"
        write_atomic(path, "\n".join(lines))
        return path

    full = sum(1 for s in scores if s >= 99.999)
    mean = sum(scores) / len(scores)
    median = sorted(scores)[len(scores) // 2]
    lines += [
        f"{len(scores)} students; mean {mean:.1f} %, median {median:.1f} %, "
        f"{full} with full marks.",
        "",
    ]

    per_stage: dict[int, list[float]] = {}
    for results in all_results.values():
        for stage, (got, out_of) in stage_scores(results).items():
            per_stage.setdefault(stage, []).append(100 * got / out_of if out_of else 0.0)
    if per_stage:
        lines += ["| stage | mean score |", "|---|---|"]
        for stage in sorted(per_stage):
            values = per_stage[stage]
            name = STAGES.get(stage, "")
            lines.append(f"| {stage} {name} | {sum(values) / len(values):.0f} % |")
        lines.append("")

    _chart_histogram(scores, charts / "scores.png")
    lines += ["## Scores", "", "![score histogram](charts/scores.png)", ""]

    _chart_pass_rates(rates, charts / "pass-rates.png")
    lines += ["## Pass rate per check", "", "![pass rate per check](charts/pass-rates.png)", ""]
    lines += ["| check | passed | students |", "|---|---|---|"]
    lines += [f"| {_cell(name)} | {100 * rate:.0f} % | {n} |" for name, rate, n in rates]
    lines.append("")

    lines += ["## Most common failures", ""]
    if top:
        _chart_failures(top, charts / "failures.png")
        lines += ["![most common failures](charts/failures.png)", ""]
        lines += ["| check | message | students |", "|---|---|---|"]
        lines += [f"| {_cell(name)} | {_cell(msg)} | {n} |" for name, msg, n in top]
    else:
        lines.append("No check failed.")
    lines.append("")

    path = out / "report.md"
    write_atomic(path, "\n".join(lines))
    return path
