"""The allocator chooses as weighing every host would: against a plain reference on random fleets.

The reference is the rule as the README states it, one host at a time: keep the hosts in an allowed pool
and region with room, score each with every weigher, normalize each weigher's scores to 0..1 across the
kept hosts, add them up by weight, take the highest total (the highest id among equals), book, repeat.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest
from wi_services.allocator import FleetColumns, Goal, Usage, acceptable_pools, fault_domains_needed, place

from wi.contract import (
    Availability,
    DeploymentRequest,
    Evictability,
    HintBase,
    LatencyTolerance,
    Pool,
    Priority,
    Region,
    Scaling,
)
from wi.engine import WorkloadHints
from wi.engine.fleet import Fleet, Server

NOW = datetime(2026, 11, 22, 12, tzinfo=UTC)
WHO = {"tenant": "acme", "workload": "w"}
WEIGHTS = {"spread": 4.0, "pool": 2.0, "money": 2.0, "region": 1.0, "packing": 0.5}


def _fleet(rng: random.Random) -> Fleet:
    regions = [
        {
            "name": f"r{i}",
            "geography": rng.choice(["us", "europe"]),
            "price_per_core_hour": rng.choice([0.04, 0.05, 0.06]),
            "carbon_g_per_kwh": rng.choice([None, 20.0, 300.0]),
        }
        for i in range(3)
    ]
    servers = [
        {
            "id": f"s{n:03d}",
            "cluster": "c",
            "region": rng.choice(regions)["name"],
            "pool": rng.choice(list(Pool)),
            "cores": rng.choice([8, 16, 48]),
            "memory_gb": rng.choice([32.0, 64.0, 128.0]),
            "gpus": rng.choice([0, 0, 2]),
            "fault_domain": f"fd{rng.randrange(4)}",
            "power_domain": "pd",
        }
        for n in range(rng.randrange(5, 40))
    ]
    factors = {"regular": 1.0, "spot": 0.3, "harvest": 0.5, "oversubscribed": 0.6}
    return Fleet.model_validate({"regions": regions, "servers": servers, "pool_price_factors": factors})


def _hints(rng: random.Random) -> WorkloadHints:
    said: list[HintBase] = []
    if rng.random() < 0.4:
        said.append(Priority(**WHO, level=rng.choice(["critical", "high", "normal", "low", "best_effort"])))
    if rng.random() < 0.4:
        said.append(Evictability(**WHO, evictable=rng.random() < 0.7))
    if rng.random() < 0.3:
        said.append(LatencyTolerance(**WHO, latency_class=rng.choice(["strict", "moderate", "tolerant"])))
    if rng.random() < 0.2:
        said.append(Availability(**WHO, target=rng.choice([0.99, 0.999, 0.9999])))
    if rng.random() < 0.2:
        allowed = rng.choice(["any", ["r0"], ["r1", "r2"]])
        said.append(Region(**WHO, allowed=allowed, data_residency=rng.choice([None, "us"])))
    if rng.random() < 0.2:
        said.append(Scaling(**WHO, stateless=True, min_cores=2, max_cores=8))
    return WorkloadHints.from_hints({hint.kind: hint for hint in said})


def _reference(
    fleet: Fleet, used: dict[str, list[float]], request: DeploymentRequest, hints: WorkloadHints, goal: Goal
) -> list[str] | None:
    """The servers every instance goes to, or None when they cannot all be placed as the hints need."""
    pools, _ = acceptable_pools(hints)
    regions = {r.name: r for r in fleet.regions}
    used = {server: list(amounts) for server, amounts in used.items()}
    chosen: list[Server] = []

    def free(server: Server) -> tuple[float, float, float]:
        cores, memory, gpus = used[server.id]
        return server.cores - cores, server.memory_gb - memory, server.gpus - gpus

    def scores(server: Server) -> dict[str, float]:
        region = regions[server.region]
        money = (
            -fleet.price_per_core_hour(server)
            if goal is Goal.CHEAPEST
            else -(region.carbon_g_per_kwh if region.carbon_g_per_kwh is not None else 2000.0)
        )
        preferred = request.regions
        return {
            "spread": 0.0 if server.fault_domain in {s.fault_domain for s in chosen} else 1.0,
            "pool": -float(pools.index(server.pool)),
            "money": money,
            "region": -float(preferred.index(server.region))
            if server.region in preferred
            else -float(len(preferred)),
            "packing": -free(server)[0] / server.cores,
        }

    need = (request.cores, request.memory_gb, request.gpus)
    for _ in range(request.instances):
        kept = [
            s
            for s in fleet.servers
            if s.pool in pools
            and (hints.allowed_regions is None or s.region in hints.allowed_regions)
            and (hints.data_residency is None or regions[s.region].geography == hints.data_residency)
            and all(room >= wanted for room, wanted in zip(free(s), need, strict=True))
        ]
        if not kept:
            return None
        raw = {s.id: scores(s) for s in kept}
        total = dict.fromkeys(raw, 0.0)
        for weigher, weight in WEIGHTS.items():
            low = min(r[weigher] for r in raw.values())
            high = max(r[weigher] for r in raw.values())
            for server_id, r in raw.items():
                total[server_id] += weight * ((r[weigher] - low) / (high - low) if high > low else 0.0)
        best = max(kept, key=lambda s: (total[s.id], s.id))
        used[best.id] = [amount + wanted for amount, wanted in zip(used[best.id], need, strict=True)]
        chosen.append(best)
    if len({s.fault_domain for s in chosen}) < fault_domains_needed(hints, request.instances):
        return None
    return [s.id for s in chosen]


@pytest.mark.parametrize("seed", range(40))
def test_the_allocator_chooses_the_hosts_weighing_every_host_would(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(10):
        fleet = _fleet(rng)
        columns = FleetColumns.of(fleet)
        usage = Usage.empty(columns)
        used: dict[str, list[float]] = {}
        for server in fleet.servers:
            cores, memory = rng.randrange(1, server.cores + 1), rng.choice([0.5, server.memory_gb / 2])
            usage.book(
                [columns.index[server.id]],
                DeploymentRequest(**WHO, deployment="x", instances=1, cores=cores, memory_gb=memory),
            )
            used[server.id] = [cores, memory, 0]
        request = DeploymentRequest(
            **WHO,
            deployment="d",
            instances=rng.randrange(1, 5),
            cores=rng.choice([1, 2, 4, 8]),
            memory_gb=rng.choice([1.0, 8.0, 32.0]),
            gpus=rng.choice([0, 0, 0, 1]),
            regions=rng.choice([[], ["r2"], ["r1", "r0"]]),
        )
        hints, goal = _hints(rng), rng.choice(list(Goal))
        placed = place(columns, usage, request, hints, NOW, goal)
        expected = _reference(fleet, used, request, hints, goal)
        assert (placed.servers or None) == expected, placed.log
