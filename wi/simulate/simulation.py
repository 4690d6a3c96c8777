"""A whole simulation: one scenario's inputs, drawn once under a seed, replayed in every arm.

The arms are without WI (no hint read), with WI (every hint read) and, for the breakdown, one ablation
per optimization (every hint read but that optimization's). A VM run does not depend on the LLM hints
nor an LLM run on the VM hints, so runs that would be identical are replayed once and shared.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

import numpy as np
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from wi_services.llm.perf_model import load_perf_model

from wi.contract import Pool
from wi.engine.fleet import Fleet

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
    scenario: Scenario,
    seed: int = 0,
    ablations: bool = True,
    show_progress: bool = False,
    workers: int | None = None,
) -> Simulation:
    """Draws the scenario's inputs under ``seed`` and replays them in every arm, the VM runs in up to
    ``workers`` processes at once (default: one per core; each run is deterministic, so the result does
    not depend on how many)."""
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
        vm_runs = _vm_runs(sorted(vm_keys, key=sorted), (trace, traits, fleet, events), workers, advance)
        llm_runs = {
            key: simulate_llm(scenario, llm_traces, fleet, WITH_WI if key else WITHOUT_WI, advance)
            for key in llm_keys
        }
    arms = {
        name: Arm(reads, vm_runs[reads - {Optimization.GPU_POWER}], llm_runs[Optimization.GPU_POWER in reads])
        for name, reads in runs.items()
    }
    return Simulation(scenario, seed, trace, traits, llm_traces, len(fleet.servers), arms)


VmInputs = tuple[VmTrace, Traits, Fleet, list[Pressure]]
_INPUTS: VmInputs | None = None
"""The VM runs' inputs, set before worker processes fork so that they inherit them unpickled."""
_DONE: Any = None
"""The events the worker processes have done, shared with the parent for the progress bar."""


def _vm_run(reads: frozenset[Optimization]) -> VmRun:
    """One VM run in a worker process, on the inputs it inherited."""
    assert _INPUTS is not None

    def advance(n: int) -> None:
        with _DONE.get_lock():
            _DONE.value += n

    trace, traits, fleet, events = _INPUTS
    return simulate_vms(trace, traits, fleet, reads, events, advance)


def _vm_runs(
    keys: list[frozenset[Optimization]],
    inputs: VmInputs,
    workers: int | None,
    advance: Callable[[int], None],
) -> dict[frozenset[Optimization], VmRun]:
    """The VM runs of ``keys``: one after the other here, or side by side in forked processes."""
    global _INPUTS, _DONE
    count = min(len(keys), workers or os.cpu_count() or 1)
    if count <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        trace, traits, fleet, events = inputs
        return {key: simulate_vms(trace, traits, fleet, key, events, advance) for key in keys}
    context = multiprocessing.get_context("fork")
    _INPUTS, _DONE = inputs, context.Value("q", 0)
    try:
        with ProcessPoolExecutor(count, mp_context=context) as pool:
            futures = {key: pool.submit(_vm_run, key) for key in keys}
            reported = 0
            while not all(f.done() for f in futures.values()):
                wait(list(futures.values()), timeout=0.5, return_when=FIRST_COMPLETED)
                advance(_DONE.value - reported)
                reported = _DONE.value
            advance(_DONE.value - reported)
            return {key: future.result() for key, future in futures.items()}
    finally:
        _INPUTS, _DONE = None, None


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
