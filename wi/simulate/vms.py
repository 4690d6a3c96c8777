"""The VM half of a simulation: arrivals, departures and capacity pressure, as discrete events in virtual
time, decided by the live VM allocator and Spot/Harvest manager.

Each arrival is a ``DeploymentRequest`` of one instance for the VM's workload, decided by
``VmAllocator``: placed (it runs its trace lifetime from then), deferred (it asks again at the notice's
``start_at``, its delay tolerance reduced by the wait) or rejected. A departure releases the VM: the
workload ends its own deployment, which the platform does not decide, so the simulator applies the
release to the inventory itself (asking the allocator would scan every instance for each of a million
departures). A capacity pressure event is decided by ``SpotHarvestManager``: the instances it evicts stop
at their notice's deadline, and the simulator checks each notice against what the workload needed.

An evicted VM's work is not done yet: at its notice's deadline its workload asks again, as a new
deployment request, for the rest of its lifetime (placed, deferred or rejected like any arrival); the
time until it runs again is downtime. So every arm serves the same work, and an eviction's cost is a
restart, not work that silently disappears. (The first version ended an evicted VM for good, and the
arms' costs then compared different amounts of work: with WI, 31 % fewer core-hours were served.) What
a restart itself takes (boot, reloading state) is not modelled.

Servers draw ``SERVER_IDLE_W`` while anything runs on them, plus up to ``SERVER_PEAK_W`` in proportion
to the share of their cores booked; an empty server is taken to be off.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import numpy as np
from numpy.typing import NDArray
from wi_services.allocator import VmAllocator
from wi_services.spot_harvest import SpotHarvestManager

from wi.contract import CapacityPressure, DeploymentRequest, Placement, Pool
from wi.engine import Inventory, ServiceContext, WorkloadHints, instance_name
from wi.engine.fleet import Fleet
from wi.engine.inventory import InstancePlaced, InstanceReleased

from .platform import Platform
from .prices import vm_price_per_hour
from .scenario import TENANT
from .traces import VmTrace
from .workloads import Optimization, Traits, vm_hints

EPOCH = datetime(2020, 1, 1, tzinfo=UTC)
"""Virtual time zero."""
SERVER_PEAK_W = 450.0
"""A two-socket 64-core server's draw at full load. An assumption, not from a source."""
SERVER_IDLE_W = 0.4 * SERVER_PEAK_W
"""Its draw when on but idle: 40 % of peak. An assumption, not from a source."""
POOLS: tuple[Pool, ...] = tuple(Pool)
DEPLOYMENT = "vm"
"""Every VM is the one instance of its workload's deployment ``vm``."""
SAMPLES = 2000
"""About how many points the fleet's time series keep."""
END, PRESSURE, ARRIVE = 0, 1, 2
"""Event kinds, in the order events at one instant are handled: departures free room first."""


@dataclass(frozen=True)
class Pressure:
    """A capacity pressure event of the scenario: a (region, pool) cell needs a share of the cores booked
    in it back (rounded; none when that rounds to no core)."""

    at_s: float
    region: str
    cluster: str
    pool: Pool
    share: float
    within_s: int


@dataclass
class VmRun:
    """What happened to each VM in one run (columns indexed like the trace), and the fleet over time."""

    placed_s: NDArray[np.float64]
    """When it first started (NaN: rejected before it ever ran)."""
    ended_s: NDArray[np.float64]
    """When it stopped for good: its work done, or an ask after an eviction rejected (NaN: never ran)."""
    served_s: NDArray[np.float64]
    """How long it ran, over all its placements."""
    down_s: NDArray[np.float64]
    """How long it was down after evictions: waiting to run again, or the rest of its lifetime if that
    ask was rejected."""
    deferrals: NDArray[np.int64]
    """How many times a start was deferred."""
    rejected: NDArray[np.bool_]
    """An ask of it was rejected (its first, or one after an eviction): the rest of its work not done."""
    evictions: NDArray[np.int64]
    """How many times it was evicted."""
    short_notice: NDArray[np.int64]
    """How many of its evictions came with less notice than it needs."""
    notice_s: NDArray[np.float64]
    """The shortest notice its evictions came with (NaN: never evicted)."""
    pool: NDArray[np.intp]
    """Its last placement's pool, as a position in ``POOLS`` (-1: never placed)."""
    region: NDArray[np.intp]
    """Its last placement's region, as a position in the fleet's regions (-1: never placed)."""
    cost: NDArray[np.float64]
    """What it paid over all its placements, USD."""
    energy_kwh: float = 0.0
    carbon_kg: float = 0.0
    peak_servers: int = 0
    peak_cores: int = 0
    times_s: list[float] | None = None
    """When each sample of the series below was taken."""
    cores_by_pool: list[list[int]] | None = None
    """Cores booked in each pool, per sample."""

    @property
    def evicted(self) -> NDArray[np.bool_]:
        """Whether each VM was evicted at least once."""
        evicted: NDArray[np.bool_] = self.evictions > 0
        return evicted

    @classmethod
    def empty(cls, count: int) -> VmRun:
        """Nothing happened yet to ``count`` VMs."""
        nan = np.full(count, np.nan)
        return cls(
            placed_s=nan.copy(),
            ended_s=nan.copy(),
            served_s=np.zeros(count),
            down_s=np.zeros(count),
            deferrals=np.zeros(count, np.int64),
            rejected=np.zeros(count, np.bool_),
            evictions=np.zeros(count, np.int64),
            short_notice=np.zeros(count, np.int64),
            notice_s=nan.copy(),
            pool=np.full(count, -1, np.intp),
            region=np.full(count, -1, np.intp),
            cost=np.zeros(count),
            times_s=[],
            cores_by_pool=[],
        )


class _Meter:
    """Cores booked on each server, kept in step with the inventory's changes of use, and what follows:
    servers on, power and carbon by region, cores by pool."""

    def __init__(self, fleet: Fleet) -> None:
        servers = fleet.servers
        self.index = {s.id: i for i, s in enumerate(servers)}
        regions = [r.name for r in fleet.regions]
        self.region = np.array([regions.index(s.region) for s in servers], dtype=np.intp)
        self.pool = np.array([POOLS.index(s.pool) for s in servers], dtype=np.intp)
        self.sold = np.array([s.cores for s in servers], dtype=np.float64)
        self.carbon = np.array([r.carbon_g_per_kwh or 0.0 for r in fleet.regions])
        self.booked = np.zeros(len(servers), np.int64)
        self.on = np.zeros(len(regions), np.int64)
        self.load = np.zeros(len(regions))
        """By region: the sum of its servers' booked share."""
        self.by_pool = np.zeros(len(POOLS), np.int64)
        self.by_cell = np.zeros((len(regions), len(POOLS)), np.int64)
        """Cores booked by (region, pool)."""
        self.version = 0

    def follow(self, inventory: Inventory) -> bool:
        """Takes in the inventory's changes of use since the last call; returns whether there were any."""
        if inventory.version == self.version:
            return False
        changes = inventory.changes_since(self.version)
        assert changes is not None, "the meter fell behind the inventory's journal"
        for server, use in changes:
            i = self.index[server]
            before, after = int(self.booked[i]), int(self.booked[i]) + use.cores
            self.booked[i] = after
            region = self.region[i]
            self.on[region] += (after > 0) - (before > 0)
            self.load[region] += use.cores / self.sold[i]
            self.by_pool[self.pool[i]] += use.cores
            self.by_cell[region, self.pool[i]] += use.cores
        self.version = inventory.version
        return True

    def watts(self) -> NDArray[np.float64]:
        """The draw of each region's servers now."""
        watts: NDArray[np.float64] = SERVER_IDLE_W * self.on + (SERVER_PEAK_W - SERVER_IDLE_W) * self.load
        return watts


def simulate_vms(
    trace: VmTrace,
    traits: Traits,
    fleet: Fleet,
    reads: frozenset[Optimization],
    pressures: Sequence[Pressure],
    advance: Callable[[int], None] = lambda _: None,
) -> VmRun:
    """Replays the trace on the live allocator and Spot/Harvest manager, the platform knowing of each VM
    what the hints of the optimizations in ``reads`` tell; ``advance`` is called with events done."""
    regions = tuple(r.name for r in fleet.regions)
    context = ServiceContext(fleet)
    allocator, evictor = VmAllocator(context), SpotHarvestManager(context)
    platform = Platform()
    meter = _Meter(fleet)
    run = VmRun.empty(len(trace))
    remaining = trace.lifetime_s.astype(np.float64)
    """Each VM's work left, from its current placement's start (or from its next ask)."""
    asked_s = trace.start_s.astype(np.float64)
    """When its current ask began: its arrival, or the deadline of the eviction it restarts after."""
    started_s = np.full(len(trace), np.nan)
    """When its current placement started (NaN: not running, or already given an eviction notice)."""
    instance = np.zeros(len(trace), np.int64)
    """Its current instance's number (a restart is a new instance of its deployment)."""
    generation = np.zeros(len(trace), np.int64)
    """Counts its placements: an END event of an earlier one is stale."""
    events: list[tuple[float, int, int, int, int]] = [
        (float(t), ARRIVE, i, i, 0) for i, t in enumerate(trace.start_s)
    ]
    events += [(p.at_s, PRESSURE, i, i, 0) for i, p in enumerate(pressures)]
    heapq.heapify(events)
    horizon = max(float(trace.end_s.max()), 1.0)
    sample_every, next_sample = horizon / SAMPLES, 0.0
    last_t, done, order = 0.0, 0, len(events)

    def stop(vm: int, at_s: float, hints: WorkloadHints) -> None:
        """Accounts for a VM's current placement, from its start to ``at_s``."""
        ran = at_s - started_s[vm]
        price = vm_price_per_hour(
            regions[run.region[vm]], POOLS[run.pool[vm]], int(trace.cores[vm]), hints.min_cores
        )
        run.cost[vm] += price * ran / 3600
        run.served_s[vm] += ran
        remaining[vm] -= ran
        started_s[vm] = np.nan

    hints_of: dict[int, WorkloadHints] = {}
    """Each VM's hints as its workload states them (what changes is only the delay tolerance left)."""

    def stated(vm: int) -> WorkloadHints:
        found = hints_of.get(vm)
        if found is None:
            found = hints_of[vm] = vm_hints(traits, vm, regions, reads)
        return found

    draw_w = carbon_w = 0.0
    """The servers' draw now, and its carbon rate (W x g/kWh), as of the meter's last change."""
    while events:
        t, kind, _, item, seen = heapq.heappop(events)
        run.energy_kwh += draw_w * (t - last_t) / 3.6e6
        run.carbon_kg += carbon_w * (t - last_t) / 3.6e9
        last_t = t
        now = EPOCH + timedelta(seconds=t)
        if kind == ARRIVE:
            workload = f"vm-{item}"
            hints = stated(item)
            if t > asked_s[item]:  # asking again after a deferral: the tolerance left
                waited = int(t - asked_s[item])
                hints = replace(hints, start_within_s=max(0, hints.start_within_s - waited))
            platform.known[workload] = hints
            request = DeploymentRequest(
                tenant=TENANT,
                workload=workload,
                request_id=f"{workload}-{run.evictions[item]}-{run.deferrals[item]}",
                issued_at=now,
                deployment=DEPLOYMENT,
                instances=1,
                cores=int(trace.cores[item]),
                memory_gb=float(trace.memory_gb[item]),
            )
            [decision] = platform.decide(allocator, request, now)
            notice = decision.notices[0]
            assert isinstance(notice, Placement)
            restart = run.evictions[item] > 0
            if notice.outcome == "placed":
                assert notice.pool is not None and notice.region is not None
                [placed] = decision.changes
                assert isinstance(placed, InstancePlaced)
                if restart:
                    run.down_s[item] += t - asked_s[item]
                else:
                    run.placed_s[item] = t
                started_s[item] = t
                instance[item] = int(placed.instance.rsplit("-", 1)[1])
                run.pool[item] = POOLS.index(notice.pool)
                run.region[item] = regions.index(notice.region)
                generation[item] += 1
                order += 1
                heapq.heappush(events, (t + float(remaining[item]), END, order, item, int(generation[item])))
            elif notice.outcome == "deferred":
                assert notice.start_at is not None
                run.deferrals[item] += 1
                order += 1
                at = (notice.start_at - EPOCH).total_seconds()
                heapq.heappush(events, (at, ARRIVE, order, item, 0))
            else:
                run.rejected[item] = True
                if restart:
                    run.ended_s[item] = t
                    run.down_s[item] += float(remaining[item])
                del platform.known[workload]
        elif kind == END:
            if seen == generation[item] and not np.isnan(started_s[item]):  # ends as the trace says
                workload = f"vm-{item}"
                release = InstanceReleased(
                    tenant=TENANT,
                    workload=workload,
                    instance=instance_name(DEPLOYMENT, int(instance[item])),
                    at=now,
                    why="deployment ended",
                )
                platform.inventory.apply([release])
                stop(item, t, platform.known.pop(workload))
                run.ended_s[item] = t
                platform.inventory.advance(now)
        else:
            pressure = pressures[item]
            booked = int(meter.by_cell[regions.index(pressure.region), POOLS.index(pressure.pool)])
            cores = round(pressure.share * booked)
            message = CapacityPressure(
                event_id=f"pressure-{item}",
                issued_at=now,
                cluster=pressure.cluster,
                pool=pressure.pool,
                cores_needed=max(1, cores),
                needed_within_s=pressure.within_s,
            )
            for decision in platform.decide(evictor, message, now) if cores else ():
                if decision.action != "notify":
                    continue
                [released] = decision.changes
                assert isinstance(released, InstanceReleased)
                vm = int(released.workload.removeprefix("vm-"))
                at = (released.at - EPOCH).total_seconds()
                if np.isnan(started_s[vm]) or at >= started_s[vm] + remaining[vm]:
                    continue  # given notice already, or ending by itself before the deadline
                notice_s = (released.at - now).total_seconds()
                run.evictions[vm] += 1
                run.short_notice[vm] += notice_s < traits.min_notice_s[vm]
                run.notice_s[vm] = np.fmin(run.notice_s[vm], notice_s)
                stop(vm, at, platform.known[released.workload])
                generation[vm] += 1  # its END event is stale; it asks again at the deadline
                asked_s[vm] = at
                order += 1
                heapq.heappush(events, (at, ARRIVE, order, vm, 0))
        if meter.follow(platform.inventory):
            watts = meter.watts()
            draw_w, carbon_w = float(watts.sum()), float(watts @ meter.carbon)
            run.peak_servers = max(run.peak_servers, int(meter.on.sum()))  # only a change can raise them
            run.peak_cores = max(run.peak_cores, int(meter.by_pool.sum()))
        if t >= next_sample:
            assert run.times_s is not None and run.cores_by_pool is not None
            run.times_s.append(t)
            run.cores_by_pool.append(meter.by_pool.tolist())
            next_sample = t + sample_every
        done += 1
        if done % 1000 == 0:
            advance(1000)
    advance(done % 1000)
    assert not math.isnan(run.energy_kwh)
    return run
