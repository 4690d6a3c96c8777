"""The benchmarks run (tiny, so they never rot); their figures are for people, never asserted."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench"


def test_the_allocator_benchmark_runs_and_prints_its_table() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH / "allocator.py"), "--servers", "200", "--decisions", "50"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    lines = done.stdout.splitlines()
    assert any(line.split()[:2] == ["servers", "running"] for line in lines if line.strip())
    assert any(line.strip().startswith("20 ") for line in lines) and any(
        line.strip().startswith("200 ") for line in lines
    )
    assert (
        "cost per decision, 200 vs 20 servers" in done.stdout and "placements/s on 200 servers" in done.stdout
    )
