"""The LLM half of a simulation: request traces served by endpoints the live LLM reconfigurer configures,
minute by minute in virtual time, through its Splitwise-based performance and power model.

An endpoint that states its SLOs (with WI) reports each minute's load to ``LlmReconfigurer``, which fits
it the least-power configuration that keeps them (DynamoLLM). One that does not (without WI) is
provisioned by its owner for its peak minute at full clock (``peak_config``) and never reported. In both
arms a critical thermal emergency cuts the GPU domain's budget for a while, and the reconfigurer caps GPU
frequencies (POLCA), knowing each endpoint's SLO and priority only from its hints.

A configuration takes effect at its notice's ``effective_at``; a minute is served by the configuration in
effect at its middle, under the minute's load (its requests per second and mean tokens). A request's TBT
is the minute's; its TTFT is its own prompt's prefill time, alone, times the minute's queueing (the
minute's TTFT over its mean prompt's alone). A minute whose load the configuration cannot serve (the
model's queues grow without bound) drops its requests.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta

import numpy as np
from numpy.typing import NDArray
from wi_services.llm import LlmReconfigurer
from wi_services.llm.perf_model import Load, PerfModel
from wi_services.llm.policy import EndpointState, choose_config
from wi_services.llm.service import THERMAL_BUDGET_SHARE

from wi.contract import EndpointConfig, EndpointLoad, Reconfiguration, ThermalEmergency
from wi.engine import NO_HINTS, ServiceContext, WorkloadHints
from wi.engine.fleet import Fleet, LlmEndpoint

from .platform import Platform
from .prices import GPU_PRICE_PER_HOUR
from .scenario import GPU_DOMAIN, EndpointSpec, Scenario
from .traces import LlmTrace
from .vms import EPOCH
from .workloads import Optimization

WINDOW_S = 60
"""The reconfigurer hears each endpoint's load once a minute."""
SIZING_REPLICAS = 16
"""The most replicas of the largest tensor parallelism an owner considers when sizing for the peak."""


@dataclass
class LlmRun:
    """What the endpoints did in one run."""

    ttft_ms: dict[str, NDArray[np.float64]] = field(default_factory=dict)
    """Per endpoint, each request's TTFT (NaN: dropped)."""
    tbt_ms: dict[str, NDArray[np.float64]] = field(default_factory=dict)
    met: dict[str, NDArray[np.bool_]] = field(default_factory=dict)
    """Per endpoint, whether each request kept both SLOs."""
    gpu_hours: float = 0.0
    cost: float = 0.0
    energy_kwh: float = 0.0
    carbon_kg: float = 0.0
    power_w: list[float] = field(default_factory=list)
    """The GPUs' draw, per minute."""
    budget_w: list[float] = field(default_factory=list)
    """The GPU domain's budget, per minute."""
    above_budget_wh: float = 0.0

    @property
    def requests(self) -> int:
        """Requests replayed."""
        return sum(len(m) for m in self.met.values())

    @property
    def dropped(self) -> int:
        """Requests no configuration in effect could serve."""
        return sum(int(np.isnan(t).sum()) for t in self.ttft_ms.values())


def endpoint_hints(spec: EndpointSpec) -> WorkloadHints:
    """What an endpoint that states its needs tells: its SLOs, latency class and priority."""
    return WorkloadHints(
        priority=spec.priority, latency_class=spec.latency_class, ttft_ms=spec.ttft_ms, tbt_ms=spec.tbt_ms
    )


def minute_loads(trace: LlmTrace, minutes: int) -> list[Load]:
    """Each minute's load: requests per second and mean prompt and output tokens."""
    minute = (trace.arrival_s // WINDOW_S).astype(np.int64)
    loads = []
    for k in range(minutes):
        mine = minute == k
        count = int(mine.sum())
        if count:
            prompt, output = trace.prompt_tokens[mine].mean(), trace.output_tokens[mine].mean()
            loads.append(Load(count / WINDOW_S, round(float(prompt)), round(float(output))))
        else:
            loads.append(Load(0.0, 1, 1))
    return loads


def peak_config(model: PerfModel, spec: EndpointSpec, trace: LlmTrace, minutes: int) -> EndpointConfig:
    """What an owner provisions without WI: the live policy's choice for its busiest minute and SLOs,
    run at full clock."""
    busiest = max(minute_loads(trace, minutes), key=lambda load: load.requests_per_s)
    widest = max(model.tensor_parallel_options(spec.model, spec.hardware))
    top = model.max_mhz(spec.hardware)
    sizing = LlmEndpoint(
        name="sizing",
        tenant="sizing",
        workload="sizing",
        model=spec.model,
        hardware=spec.hardware,
        replicas=SIZING_REPLICAS,
        tensor_parallel=widest,
        gpu_frequency_mhz=top,
        power_domain="sizing",
    )
    start = EndpointConfig(replicas=SIZING_REPLICAS, tensor_parallel=widest, gpu_frequency_mhz=top)
    chosen = choose_config(model, EndpointState.of(sizing, start, busiest, endpoint_hints(spec))).config
    return chosen.model_copy(update={"gpu_frequency_mhz": top})


def simulate_llm(
    scenario: Scenario,
    traces: Mapping[str, LlmTrace],
    fleet: Fleet,
    reads: frozenset[Optimization],
    advance: Callable[[int], None] = lambda _: None,
) -> LlmRun:
    """Replays the LLM traces on the live reconfigurer, endpoints stating their needs if ``reads`` has
    GPU frequency and power capping and the scenario's endpoints hint at all."""
    context = ServiceContext(fleet, llm_perf_dir=scenario.data_dir / "splitwise-perf")
    service = LlmReconfigurer(context)
    model = service.model
    hinted = Optimization.GPU_POWER in reads and scenario.characterization.endpoints_hint
    specs = scenario.llm
    platform = Platform({name: endpoint_hints(spec) if hinted else NO_HINTS for name, spec in specs.items()})
    endpoints = {e.name: e for e in fleet.llm_endpoints}
    minutes = scenario.llm_minutes
    loads = {name: minute_loads(trace, minutes) for name, trace in traces.items()}
    changes: dict[str, list[tuple[float, EndpointConfig]]] = {name: [] for name in endpoints}
    full = next(d.budget_watts for d in fleet.power_domains if d.id == GPU_DOMAIN)
    carbon = fleet.region(fleet.regions[0].name).carbon_g_per_kwh or 0.0
    run = LlmRun()
    per_request = {name: np.full((2, len(trace)), np.nan) for name, trace in traces.items()}
    minute_of = {name: (trace.arrival_s // WINDOW_S).astype(np.int64) for name, trace in traces.items()}
    hot = False
    for k in range(minutes):
        t = float(k * WINDOW_S)
        now = EPOCH + timedelta(seconds=t)
        inputs: list[ThermalEmergency | EndpointLoad] = []
        if k in (scenario.thermal_at_min, scenario.thermal_at_min + scenario.thermal_minutes):
            hot = k == scenario.thermal_at_min
            inputs.append(
                ThermalEmergency(
                    event_id=f"thermal-{k}",
                    issued_at=now,
                    power_domain=GPU_DOMAIN,
                    severity="critical",
                    ended=not hot,
                )
            )
        if hinted and k:
            for name in endpoints:
                last = loads[name][k - 1]
                inputs.append(
                    EndpointLoad(
                        event_id=f"load-{name}-{k}",
                        issued_at=now,
                        endpoint=name,
                        requests_per_s=last.requests_per_s,
                        mean_prompt_tokens=last.prompt_tokens,
                        mean_output_tokens=last.output_tokens,
                    )
                )
        for message in inputs:
            for decision in platform.decide(service, message, now):
                for notice in decision.notices:
                    if isinstance(notice, Reconfiguration):
                        at = (notice.effective_at - EPOCH).total_seconds()
                        changes[notice.endpoint].append((at, notice.after))
        budget = full * THERMAL_BUDGET_SHARE["critical"] if hot else full
        draw = 0.0
        for name, endpoint in endpoints.items():
            config = _in_effect(endpoint, changes[name], t + WINDOW_S / 2)
            load = loads[name][k]
            served = model.estimate(endpoint.model, endpoint.hardware, config, load)
            draw += served.watts
            run.gpu_hours += config.replicas * config.tensor_parallel * WINDOW_S / 3600
            if not served.feasible:
                continue  # the minute's requests are dropped
            alone = model.estimate(
                endpoint.model, endpoint.hardware, config, replace(load, requests_per_s=0.0)
            )
            queueing = served.ttft_ms / alone.ttft_ms
            trace = traces[name]
            for j in np.flatnonzero(minute_of[name] == k):
                own = Load(0.0, int(trace.prompt_tokens[j]), int(trace.output_tokens[j]))
                prefill = model.estimate(endpoint.model, endpoint.hardware, config, own).ttft_ms
                per_request[name][:, j] = prefill * queueing, served.tbt_ms
        run.power_w.append(draw)
        run.budget_w.append(budget)
        run.energy_kwh += draw * WINDOW_S / 3.6e6
        run.above_budget_wh += max(0.0, draw - budget) * WINDOW_S / 3600
        advance(1)
    run.carbon_kg = run.energy_kwh * carbon / 1000
    run.cost = run.gpu_hours * GPU_PRICE_PER_HOUR
    for name, spec in specs.items():
        ttft, tbt = per_request[name]
        run.ttft_ms[name], run.tbt_ms[name] = ttft, tbt
        run.met[name] = (ttft <= spec.ttft_ms) & (tbt <= spec.tbt_ms)
    return run


def _in_effect(
    endpoint: LlmEndpoint, changes: list[tuple[float, EndpointConfig]], at_s: float
) -> EndpointConfig:
    """The configuration an endpoint runs at ``at_s``: the last change in effect by then, else its own."""
    config = EndpointConfig(
        replicas=endpoint.replicas,
        tensor_parallel=endpoint.tensor_parallel,
        gpu_frequency_mhz=endpoint.gpu_frequency_mhz,
    )
    for effective, after in changes:
        if effective <= at_s:
            config = after
    return config
