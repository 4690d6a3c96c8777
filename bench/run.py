"""Every benchmark, one table, ``bench/results/latest.json`` and the README's performance section.

Each benchmark module has ``measure(...)`` returning records (a figure beside its raw baseline from the
same run). This runs them in turn, prints the table, writes ``latest.json`` (the records, the machine
and the commit) and rewrites the README between its ``bench:begin`` and ``bench:end`` markers from it.
``--quick`` runs each with tiny sizes (what ``tests/test_bench.py`` does so that none rots) and writes
``bench/results/quick.json`` only.

Run: ``make bench`` (or ``wi bench``, or ``.venv/bin/python bench/run.py [--quick] [--only NAME,...]``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import allocator
import gateway
import hints
import memory
import notices
import runner
from harness import Record, print_records

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
README = ROOT / "README.md"
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"

FULL: dict[str, Callable[[], Any]] = {
    "hints": lambda: hints.measure(),
    "notices": lambda: notices.measure(),
    "gateway": lambda: gateway.measure(),
    "allocator": lambda: allocator.measure(),
    "runner": lambda: runner.measure(),
    "memory": lambda: memory.measure(databases=("sqlite", "postgresql")),
}
QUICK: dict[str, Callable[[], Any]] = {
    "hints": lambda: hints.measure(count=40, clients=4, databases=("sqlite",), seconds=1),
    "notices": lambda: notices.measure(workloads=(1, 3), notices=10, gap_ms=1, http_workloads=(1,)),
    "gateway": lambda: gateway.measure(seconds=1, workers=(2,)),
    "allocator": lambda: allocator.measure(servers=200, decisions=50),
    "runner": lambda: runner.measure(count=20, databases=("sqlite",)),
    "memory": lambda: memory.measure(workloads=20),
}


def _git(*arguments: str) -> str:
    return subprocess.run(["git", *arguments], cwd=ROOT, capture_output=True, text=True).stdout.strip()


def machine() -> dict[str, object]:
    """Where the figures were measured: cores, load average at the end, Python, OS."""
    return {
        "cores": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def run(selected: dict[str, Callable[[], Any]]) -> list[Record]:
    """Runs each benchmark (sync or async ``measure``), printing its table as it finishes."""
    records: list[Record] = []
    for name, measure in selected.items():
        print(f"== {name}", flush=True)
        started = time.perf_counter()
        result = measure()
        found = asyncio.run(result) if asyncio.iscoroutine(result) else result
        print_records(found)
        print(f"   ({time.perf_counter() - started:.0f} s)\n", flush=True)
        records += found
    return records


def readme_section(results: dict[str, Any]) -> str:
    """The README's performance section, made from ``latest.json``."""
    where = results["machine"]
    lines = [
        BEGIN,
        f"Measured by `make bench` at commit `{results['commit']}` on {results['date']}: "
        f"{where['cores']} cores, load average {', '.join(map(str, where['load_average']))} at the end, "
        f"Python {where['python']}, {where['platform']}. Generated from `bench/results/latest.json`.",
        "",
        "| benchmark | WI | baseline, same run | ratio | goal |",
        "|---|---:|---|---:|---|",
    ]
    for r in results["records"]:
        baseline = "" if r["baseline"] is None else f"{r['baseline']}: {r['baseline_value']:,}"
        ratio = "" if r["ratio"] is None else f"{r['ratio']:.3f}"
        goal = "" if r["goal"] is None else f"{r['goal']}: " + ("met" if r["met"] else "**missed**")
        lines.append(f"| {r['name']} | {r['value']:,} {r['unit']} | {baseline} | {ratio} | {goal} |")
    lines.append(END)
    return "\n".join(lines)


def update_readme(results: dict[str, Any]) -> None:
    """Replaces the README's section between the markers."""
    text = README.read_text()
    start, end = text.index(BEGIN), text.index(END) + len(END)
    README.write_text(text[:start] + readme_section(results) + text[end:])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes: check that each benchmark runs")
    parser.add_argument("--only", help=f"comma-separated, of: {', '.join(FULL)}")
    arguments = parser.parse_args()
    table = QUICK if arguments.quick else FULL
    names = arguments.only.split(",") if arguments.only else list(table)
    unknown = set(names) - set(table)
    if unknown:
        parser.error(f"no benchmark named {', '.join(sorted(unknown))}")
    records = run({n: table[n] for n in names})
    results = {
        "commit": _git("rev-parse", "--short", "HEAD")
        + ("-dirty" if _git("status", "--porcelain", "-uno") else ""),
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine(),
        "records": [r.as_json() for r in records],
    }
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / ("quick.json" if arguments.quick else "latest.json")
    out.write_text(json.dumps(results, indent=2) + "\n")
    print("== all")
    print_records(records)
    print(f"wrote {out.relative_to(ROOT)}")
    if not arguments.quick and not arguments.only:
        update_readme(results)
        print("updated README.md's performance section")


if __name__ == "__main__":
    main()
