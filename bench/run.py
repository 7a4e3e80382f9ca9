"""The serving benchmark: 07 and 08 (pickle), 09 (ONNX) and Flask + gunicorn, in one run.

Run:  uv run python bench/run.py [--container] [--quick] [--json FILE] | [--report FILE]
Trains a copy of each step (its own train.py) in a temporary folder, then measures, each as a
ratio to 07 on the same machine in the same run: requests/s, p50/p99 and CPU time per request
(bench/serve.py); the model alone, without the web layer (bench/scoring.py); cold start to the
first 200 of POST /predict and resident memory (locally; with --container also in each step's
own image, and the image size added over the base: bench/coldstart.py). Prints Markdown tables
and the targets with their measured ratios.
Needs wrk (Debian package `wrk`); servers listen on 127.0.0.1 only and stop at the end.
--quick (CI): one 3-second round (a batch of 1,000 may take a second on a busy machine), one
cold start per step, no container.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench import coldstart, scoring, serve
from bench.harness import Result, bytecode_env, prepare, workspace


def targets(probes: list[serve.Probe], cases: list[coldstart.Case], added: dict[str, float]) -> str:
    """Each target of step 09 with its measured ratio (the benchmark asserts none of them)."""
    m = {(p.server, p.path): p.median() for p in probes}
    onnx, hardened, lesson = "09 (ONNX)", "08 (pickle, hardened)", "07 (pickle)"
    rows: list[tuple[str, str, bool]] = []  # (target, measured, met)

    def throughput(label: str, a: str, b: str, path_b: str, goal: float) -> None:
        if (a, "/predict") in m and (b, path_b) in m:
            x, y = m[a, "/predict"], m[b, path_b]
            by_rps, by_cpu = x.requests_per_s / y.requests_per_s, y.cpu_ms / x.cpu_ms
            rows.append((f"{label} (by requests/s)", f"{by_rps:.2f}×", by_rps >= goal))
            rows.append((f"{label} (by CPU time per request)", f"{by_cpu:.2f}×", by_cpu >= goal))

    throughput("09 /predict ≥ 2× 07's", onnx, lesson, "/predict", 2)
    throughput("09 /predict ≥ 3× Flask + gunicorn", onnx, serve.FLASK, "/predict", 3)
    throughput("09 /predict ≥ 0.5× its own /ping", onnx, onnx, "/ping", 0.5)
    throughput("08 /predict ≥ 1.2× Flask + gunicorn", hardened, serve.FLASK, "/predict", 1.2)
    if (onnx, "/predict_batch") in m:
        records = m[onnx, "/predict_batch"].requests_per_s * serve.BATCH
        rows.append(("09 /predict_batch ≥ 100,000 records/s (one worker)",
                     f"{records:,.0f} records/s", records >= 100_000))  # fmt: skip

    def median_ratio(values: str, step: str, where: str) -> float | None:
        by_name = {c.name: getattr(c, values) for c in cases}
        a, b = by_name.get(f"{step}, {where}"), by_name.get(f"07, {where}")
        return statistics.median(a) / statistics.median(b) if a and b else None

    for where in ("local", "container"):
        ratio = median_ratio("seconds", "09", where)
        if ratio is not None:
            rows.append((f"09 cold start ≤ 0.3× 07's ({where})", f"{ratio:.2f}×", ratio <= 0.3))
    if "09" in added:
        ratio = added["09"] / added["07"]
        rows.append(("09 image added over the base ≤ 0.5× 07's", f"{ratio:.2f}×", ratio <= 0.5))
    for where in ("local", "container"):
        ratio = median_ratio("rss", "09", where)
        if ratio is not None:
            rows.append((f"09 resident memory after start ≤ 0.5× 07's ({where})", f"{ratio:.2f}×",
                         ratio <= 0.5))  # fmt: skip
    lines = ["| target | measured | met? |", "|---|---|---|"]
    lines += [f"| {t} | {v} | {'yes' if ok else 'no'} |" for t, v, ok in rows]
    return "\n".join(lines)


def report(data: dict[str, Any]) -> str:
    """The Markdown tables of one run, from what main() measured (or a --json file of it)."""
    probes = [
        serve.Probe(
            r["server"], r["path"], None, r["port"], r["session"], [Result(**x) for x in r["runs"]]
        )
        for r in data["throughput"]
    ]
    cases = []
    for c in data["cold_start"]:
        step, where = c["case"].rsplit(", ", 1)
        case = coldstart.Case(step, where, lambda port: [], Path(), None)
        case.seconds, case.rss = c["seconds"], c["rss_mb"]
        cases.append(case)
    added, costs, run = data["image_added_mb"], data["model_alone_us"], data["settings"]
    rounds, seconds = run["rounds"], run["seconds"]
    return "\n".join(
        [
            "## Latency and throughput\n",
            serve.table(probes),
            f"\nmedians of {rounds} round(s) of {seconds} s per request"
            f"{f', after a {seconds} s warm-up' if rounds > 1 else ''}; wrk 1 thread, "
            "8 connections; "
            f"/predict_batch = {serve.BATCH} customers per request\n",
            "## The model alone\n",
            scoring.table(costs),
            "\nfastest of several timings, in one process, no web layer\n",
            "## Cold start, memory, image size\n",
            coldstart.table(cases, added),
            f"\nmedian of {run['repeat']} run(s) per case after one untimed run\n",
            "## Targets\n",
            targets(probes, cases, added),
            f"\n{run['cpus']} CPUs, load average {run['load']} (1, 5, 15 min) at the end",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run (CI): proves it works")
    parser.add_argument("--container", action="store_true", help="also build and start images")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of wrk runs")
    parser.add_argument("--seconds", type=int, default=3, help="seconds per wrk run")
    parser.add_argument("--repeat", type=int, default=5, help="cold starts per case")
    parser.add_argument("--json", type=Path, help="also write every measurement to this file")
    parser.add_argument("--report", type=Path, help="print the tables of an earlier --json run")
    args = parser.parse_args()
    if args.report:
        print(report(json.loads(args.report.read_text())))
        return
    rounds, seconds, repeat = (1, 3, 1) if args.quick else (args.rounds, args.seconds, args.repeat)

    with workspace() as tmp:
        steps = prepare(tmp)
        env = bytecode_env(tmp)
        probes = serve.measure(steps, env, tmp, rounds, seconds)
        costs = scoring.measure(
            steps["08"] / "pipeline.bin", steps["09"] / "pipeline.onnx", args.quick
        )
        cases = coldstart.local_cases(steps, env)
        added: dict[str, float] = {}
        if args.container:
            more, added = coldstart.container_cases(coldstart.engine(), steps)
            cases += more
        coldstart.measure(cases, repeat)

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    settings = {"rounds": rounds, "seconds": seconds, "repeat": repeat, "load": load,
                "cpus": os.cpu_count()}  # fmt: skip
    data = {
        "throughput": [{**asdict(p), "body": None, "median": asdict(p.median())} for p in probes],
        "cold_start": [{"case": c.name, "seconds": c.seconds, "rss_mb": c.rss} for c in cases],
        "image_added_mb": added,
        "model_alone_us": costs,
        "settings": settings,
    }
    print(report(data))
    if args.json:
        args.json.write_text(json.dumps(data, indent=1))


if __name__ == "__main__":
    main()
