"""A whole simulation: one scenario's inputs, drawn once under a seed, replayed in every arm.

The arms are without WI (no hint read), with WI (every hint read) and, for the breakdown, one ablation
per optimization (every hint read but that optimization's). A VM run does not depend on the LLM hints
nor an LLM run on the VM hints, so runs that would be identical are replayed once and shared.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from wi_services.llm.perf_model import load_perf_model

from wi.contract import Pool

from .llm import LlmRun, peak_config, simulate_llm
from .scenario import REGIONS, Scenario, cluster
from .traces import LlmTrace, VmTrace
from .vms import Pressure, VmRun, simulate_vms
from .workloads import WITH_WI, WITHOUT_WI, Optimization, Traits, draw_traits

WITHOUT, WITH = "without_wi", "with_wi"
"""The two arms' names (``summary.json``'s keys)."""
EVICTABLE_POOLS = (Pool.SPOT, Pool.HARVEST)
"""The pools capacity pressure reclaims cores from."""


@dataclass(frozen=True)
class Arm:
    """One run's VM and LLM outcomes."""

    reads: frozenset[Optimization]
    vms: VmRun
    llm: LlmRun


@dataclass(frozen=True)
class Simulation:
    """A scenario's inputs and every arm's outcome."""

    scenario: Scenario
    seed: int
    trace: VmTrace
    traits: Traits
    llm_traces: dict[str, LlmTrace]
    servers: int
    """The fleet's servers."""
    arms: dict[str, Arm]
    """``without_wi``, ``with_wi`` and, when ablations ran, each optimization's name."""


def pressures(scenario: Scenario, horizon_s: float, rng: np.random.Generator) -> list[Pressure]:
    """The scenario's capacity pressure events: Poisson on each region's spot and harvest cells."""
    found = []
    mean_s = scenario.pressure_every_h * 3600
    for region in REGIONS:
        for pool in EVICTABLE_POOLS:
            at = rng.exponential(mean_s)
            while at < horizon_s:
                found.append(
                    Pressure(
                        float(at),
                        region,
                        cluster(region),
                        pool,
                        scenario.pressure_share,
                        scenario.pressure_within_s,
                    )
                )
                at += rng.exponential(mean_s)
    return sorted(found, key=lambda p: p.at_s)


def simulate(
    scenario: Scenario, seed: int = 0, ablations: bool = True, show_progress: bool = False
) -> Simulation:
    """Draws the scenario's inputs under ``seed`` and replays them in every arm."""
    rng = np.random.default_rng(seed)
    trace = scenario.vm_trace(rng)
    traits = draw_traits(trace, scenario.characterization, len(REGIONS), rng)
    llm_traces = scenario.llm_traces()
    model = load_perf_model(scenario.data_dir / "splitwise-perf")
    provisioned = {
        name: peak_config(model, spec, llm_traces[name], scenario.llm_minutes)
        for name, spec in scenario.llm.items()
    }
    fleet = scenario.fleet(
        trace, {n: (c.replicas, c.tensor_parallel, c.gpu_frequency_mhz) for n, c in provisioned.items()}
    )
    events = pressures(scenario, float(trace.end_s.max()), rng)
    runs = {WITHOUT: WITHOUT_WI, WITH: WITH_WI}
    if ablations:
        runs |= {str(o): WITH_WI - {o} for o in Optimization}
    vm_keys = {reads - {Optimization.GPU_POWER} for reads in runs.values()}
    llm_keys = {Optimization.GPU_POWER in reads for reads in runs.values()}
    work = len(vm_keys) * (2 * len(trace) + len(events)) + len(llm_keys) * scenario.llm_minutes
    with _progress(show_progress, work) as advance:
        vm_runs = {key: simulate_vms(trace, traits, fleet, key, events, advance) for key in vm_keys}
        llm_runs = {
            key: simulate_llm(scenario, llm_traces, fleet, WITH_WI if key else WITHOUT_WI, advance)
            for key in llm_keys
        }
    arms = {
        name: Arm(reads, vm_runs[reads - {Optimization.GPU_POWER}], llm_runs[Optimization.GPU_POWER in reads])
        for name, reads in runs.items()
    }
    return Simulation(scenario, seed, trace, traits, llm_traces, len(fleet.servers), arms)


class _progress:
    """A rich progress bar over the simulation's events (or nothing), giving an ``advance`` callback."""

    def __init__(self, show: bool, total: int) -> None:
        self.bar = (
            Progress(
                TextColumn("simulating"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                transient=True,
            )
            if show
            else None
        )
        self.total = total

    def __enter__(self) -> Callable[[int], None]:
        if self.bar is None:
            return lambda _: None
        self.bar.start()
        task = self.bar.add_task("events", total=self.total)
        bar = self.bar
        return lambda n: bar.advance(task, n)

    def __exit__(self, *_: object) -> None:
        if self.bar is not None:
            self.bar.stop()
