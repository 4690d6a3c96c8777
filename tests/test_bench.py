"""Every benchmark runs at tiny sizes (so none rots) and reports well-formed records; their figures are
for people and are never asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIELDS = {"name", "value", "unit", "baseline", "baseline_value", "ratio", "goal", "met"}


def test_each_benchmark_runs_and_writes_its_records() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads((ROOT / "bench" / "results" / "quick.json").read_text())
    assert results["machine"]["cores"] >= 1 and results["commit"]
    records = results["records"]
    assert all(set(r) == FIELDS for r in records)
    names = " | ".join(r["name"] for r in records)
    for expected in (
        "hints stored, 4 SDK clients over NATS",
        "hints stored, 4 HTTP connections (wrk)",
        "notice latency over NATS, 3 workloads, p99",
        "notice latency over HTTP long poll",
        "notice latency over SSE",
        "gateway POST hint, 16 connections",
        "gateway POST hint, 64 connections",
        "allocator place(), 200 servers",
        "allocator runner, sqlite",
        "wi up RSS, 20 workloads x 5 hints",
    ):
        assert expected in names
    for record in records:
        assert record["value"] >= 0
        if record["baseline_value"]:
            assert record["ratio"] == round(record["value"] / record["baseline_value"], 4)
        assert (record["goal"] is None) == (record["met"] is None)
