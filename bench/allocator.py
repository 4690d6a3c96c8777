"""The VM allocator's policy alone (``place``), on a synthetic fleet of N/10 and of N servers, in one run.

Each fleet (deterministic under ``--seed``) has 8 regions in 3 geographies and racks of 20 servers (a
rack is a fault domain, its capacity sold in one pool: 55 % regular, 20 % spot, 10 % harvest, 15 %
oversubscribed), with ``--running`` instances per server already running (10: 100,000 on 10,000
servers), booked into its usage. Both fleets answer the same typical requests: 1 to 4 instances (60 %
ask for one; a mean of 1.7) of 1 to 16 cores, with mixed hints (none, evictable, low priority and
tolerant, high priority with three nines, allowed regions, data residency, a Harvest core range, delay
tolerance, preferred regions). Nothing is booked between decisions: each sees the same usage.

Raw: one full-fleet mask (cores and memory free) and argmax (cheapest core-hour) over the same arrays,
per decision: the least a vectorized placement costs. Goals: at least 10,000 placements/s on N = 10,000,
and a decision on N costing at most 3x one on N/10.
Run: ``.venv/bin/python bench/allocator.py [--servers N] [--decisions D] [--running R] [--seed S]``.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from datetime import UTC, datetime

import numpy as np
from harness import Record, print_records
from wi_services.allocator import FleetColumns, Usage, place

from wi.contract import (
    Availability,
    DelayTolerance,
    DeploymentRequest,
    Evictability,
    HintBase,
    LatencyTolerance,
    Pool,
    Priority,
    Region,
    Scaling,
)
from wi.engine import NO_HINTS, WorkloadHints
from wi.engine.fleet import Fleet

NOW = datetime(2026, 11, 22, 12, tzinfo=UTC)
WHO = {"tenant": "bench", "workload": "w"}
REGIONS = [
    ("useast", "us", 0.048, 397.0),
    ("uswest", "us", 0.052, 24.0),
    ("uscentral", "us", 0.046, 450.0),
    ("europewest", "europe", 0.055, 291.0),
    ("europenorth", "europe", 0.053, 45.0),
    ("uksouth", "europe", 0.057, 180.0),
    ("asiaeast", "asia", 0.058, 560.0),
    ("japaneast", "asia", 0.060, 470.0),
]
POOL_SHARES = {Pool.REGULAR: 0.55, Pool.SPOT: 0.20, Pool.HARVEST: 0.10, Pool.OVERSUBSCRIBED: 0.15}
RACK = 20
INSTANCES = (1, 2, 3, 4)
INSTANCE_SHARES = (0.6, 0.2, 0.1, 0.1)
"""Most deployment requests ask for one instance; a mean of 1.7."""
GOAL_RATE = 10_000.0
GOAL_COST_RATIO = 3.0


def synthetic_fleet(servers: int, rng: np.random.Generator) -> Fleet:
    """``servers`` servers in racks of RACK across REGIONS, each rack's capacity sold in one pool."""
    racks = -(-servers // RACK)
    rack_region = rng.integers(len(REGIONS), size=racks)
    rack_pool = rng.choice(list(POOL_SHARES), size=racks, p=list(POOL_SHARES.values()))
    cores = rng.choice([32, 48, 64, 96, 128], size=servers)
    memory_per_core = rng.choice([4, 8], size=servers)
    gpus = np.where(rng.random(servers) < 0.05, 8, 0)
    rows = []
    for n in range(servers):
        rack = n // RACK
        region = REGIONS[rack_region[rack]][0]
        rows.append(
            {
                "id": f"{region}-r{rack}-s{n}",
                "cluster": f"{region}-c{rack // 10}",
                "region": region,
                "pool": str(rack_pool[rack]),
                "cores": int(cores[n]),
                "memory_gb": float(cores[n] * memory_per_core[n]),
                "gpus": int(gpus[n]),
                "fault_domain": f"{region}-rack{rack}",
                "power_domain": f"{region}-row{rack // 10}",
            }
        )
    regions = [
        {"name": name, "geography": geography, "price_per_core_hour": price, "carbon_g_per_kwh": carbon}
        for name, geography, price, carbon in REGIONS
    ]
    factors = {"regular": 1.0, "spot": 0.3, "harvest": 0.5, "oversubscribed": 0.6}
    return Fleet.model_validate({"regions": regions, "servers": rows, "pool_price_factors": factors})


def running_usage(columns: FleetColumns, instances: int, rng: np.random.Generator) -> Usage:
    """``instances`` of 1 to 8 cores (4 GB each) spread at random, each on a host with room for it."""
    sizes = (1, 2, 4, 8)
    hosts = rng.integers(len(columns), size=instances)
    cores = rng.choice(sizes, size=instances)
    used = np.zeros(len(columns), dtype=np.int64)
    placed: dict[int, list[int]] = {size: [] for size in sizes}
    for host, size in zip(hosts.tolist(), cores.tolist(), strict=True):
        if used[host] + size <= columns.cores[host]:
            used[host] += size
            placed[size].append(host)
    usage = Usage.empty(columns)
    for size, on in placed.items():
        running = DeploymentRequest(
            **WHO, deployment="running", instances=1, cores=size, memory_gb=4.0 * size
        )
        usage.book(on, running)
    return usage


def typical_hints(rng: np.random.Generator) -> WorkloadHints:
    """One of the mixes workloads send, by share."""
    said: list[HintBase] = []
    mix = rng.random()
    if mix < 0.30:
        return NO_HINTS
    if mix < 0.50:
        said = [Evictability(**WHO, evictable=True, min_notice_s=60)]
    elif mix < 0.62:
        said = [Priority(**WHO, level="low"), LatencyTolerance(**WHO, latency_class="tolerant")]
    elif mix < 0.74:
        said = [Priority(**WHO, level="high"), Availability(**WHO, target=0.999)]
    elif mix < 0.82:
        said = [Region(**WHO, allowed=["useast", "uswest"])]
    elif mix < 0.87:
        said = [Region(**WHO, data_residency="europe")]
    elif mix < 0.92:
        said = [
            Evictability(**WHO, evictable=True),
            Scaling(**WHO, stateless=True, min_cores=2, max_cores=16),
        ]
    else:
        said = [DelayTolerance(**WHO, start_within_s=1800)]
    return WorkloadHints.from_hints({hint.kind: hint for hint in said})


def typical_request(n: int, rng: np.random.Generator) -> DeploymentRequest:
    """1 to 4 instances of 1 to 16 cores (4 GB per core), a GPU now and then, preferred regions sometimes."""
    cores = int(rng.choice([1, 2, 4, 8, 16]))
    return DeploymentRequest(
        **WHO,
        deployment=f"d{n}",
        instances=int(rng.choice(INSTANCES, p=INSTANCE_SHARES)),
        cores=cores,
        memory_gb=4.0 * cores,
        gpus=int(rng.random() < 0.03),
        regions=["europewest", "useast"] if rng.random() < 0.2 else [],
    )


def policy_rate(
    columns: FleetColumns, usage: Usage, work: list[tuple[DeploymentRequest, WorkloadHints]]
) -> tuple[float, Counter[str]]:
    """Decisions per second of ``place``, and their outcomes."""
    outcomes: Counter[str] = Counter()
    start = time.perf_counter()
    for request, hints in work:
        outcomes[place(columns, usage, request, hints, NOW).notice.outcome] += 1
    return len(work) / (time.perf_counter() - start), outcomes


def raw_rate(
    columns: FleetColumns, usage: Usage, work: list[tuple[DeploymentRequest, WorkloadHints]]
) -> float:
    """Decisions per second of one full-fleet mask (cores and memory free) and argmax (cheapest) over the
    same arrays."""
    cheapest, free = -columns.cell_price_per_core_hour[np.array(columns.cell)], usage.free
    start = time.perf_counter()
    for request, _ in work:
        room = (free.cores >= request.cores) & (free.memory_gb >= request.memory_gb)
        np.argmax(np.where(room, cheapest, -np.inf))
    return len(work) / (time.perf_counter() - start)


def measure(servers: int = 10_000, decisions: int = 20_000, running: int = 10, seed: int = 7) -> list[Record]:
    """Placements per second on a fleet of ``servers`` and of a tenth of it, against the raw mask and
    argmax; and how much a decision costs more on the larger fleet. Prints a line per fleet."""
    rng = np.random.default_rng(seed)
    work = [(typical_request(n, rng), typical_hints(rng)) for n in range(decisions)]
    sizes = (max(1, servers // 10), servers)
    mean = sum(request.instances for request, _ in work) / len(work)
    print(
        f"place() alone: {decisions:,} decisions on each fleet, 1-4 instances each (mean {mean:.2f}), "
        f"mixed hints, seed {seed}\n"
    )
    print(
        f"{'servers':>8}{'running':>10}{'cores used':>12}{'placements/s':>14}{'us/decision':>13}"
        f"{'raw/s':>11}{'policy/raw':>12}  outcomes"
    )
    records, rates = [], {}
    for size in sizes:
        columns = FleetColumns.of(synthetic_fleet(size, rng))
        usage = running_usage(columns, running * size, rng)
        policy_rate(columns, usage, work[:200])  # warm up as a running service is: its allowances known
        rate, outcomes = policy_rate(columns, usage, work)
        raw = raw_rate(columns, usage, work)
        rates[size] = rate
        used = usage.cores.sum() / columns.cores.sum()
        listed = ", ".join(f"{count:,} {outcome}" for outcome, count in sorted(outcomes.items()))
        print(
            f"{size:>8,}{running * size:>10,}{used:>11.0%}{rate:>14,.0f}{1e6 / rate:>13.1f}"
            f"{raw:>11,.0f}{rate / raw:>12.3f}  {listed}"
        )
        goal = f">= {GOAL_RATE:,.0f}/s" if size == 10_000 else None
        records.append(
            Record(
                f"allocator place(), {size:,} servers",
                round(rate, 1),
                "decisions/s",
                "one mask and argmax over the fleet",
                round(raw, 1),
                goal,
                rate >= GOAL_RATE if goal else None,
            )
        )
    small, large = sizes
    growth = rates[small] / rates[large]
    records.append(
        Record(
            f"allocator cost per decision, {large:,} vs {small:,} servers",
            round(growth, 3),
            "x",
            goal=f"<= {GOAL_COST_RATIO:g}",
            met=growth <= GOAL_COST_RATIO,
        )
    )
    return records


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--servers", type=int, default=10_000, help="the larger fleet (the other is a tenth)")
    parser.add_argument("--decisions", type=int, default=20_000, help="decisions timed on each fleet")
    parser.add_argument("--running", type=int, default=10, help="instances running per server")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    print()
    print_records(measure(args.servers, args.decisions, args.running, args.seed))
